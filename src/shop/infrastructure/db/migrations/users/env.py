"""Alembic environment of the users store: runs on the connection `shop migrate` hands it."""

from alembic import context

import shop.infrastructure.db.users.phone_codes  # noqa: F401  (its table joins the store's metadata)
from shop.infrastructure.db.users.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="alembic_version_users",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
