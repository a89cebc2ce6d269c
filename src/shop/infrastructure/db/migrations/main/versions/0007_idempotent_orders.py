"""An idempotency key remembers the order its request placed, written in the order's own transaction, so a retry
whose first answer was lost (a database restart after the commit) finds the order instead of failing on its cart.

Revision ID: main_0007
Revises: main_0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "main_0007"
down_revision = "main_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("order_number", sa.String(24), nullable=True))
        batch.add_column(sa.Column("order_access_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("order_access_key")
        batch.drop_column("order_number")
