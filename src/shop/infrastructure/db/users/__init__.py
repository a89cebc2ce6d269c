"""The users store: people, credentials, roles."""
