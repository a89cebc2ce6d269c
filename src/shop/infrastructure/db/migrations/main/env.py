"""Alembic environment of the main store: runs on the connection `shop migrate` hands it."""

from alembic import context

from shop.infrastructure.db.main.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="alembic_version_main",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
