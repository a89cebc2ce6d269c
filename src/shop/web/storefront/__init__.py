"""The main storefront: server-rendered pages (Jinja2) that work without JavaScript; htmx makes cart updates
and catalogue filters partial-page where it is present."""
