"""E-mail adapters: SMTP (aiosmtplib), .eml files for development, and the Jinja2 templates of the shop's mail."""
