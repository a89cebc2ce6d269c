"""Alembic trees, one per store. Each keeps its own version table so stores can share one database."""
