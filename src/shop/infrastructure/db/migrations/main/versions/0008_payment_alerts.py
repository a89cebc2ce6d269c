"""An order's payment can carry an alert for staff: money that came for the order but not its total (a webhook
whose amount or currency differs), which pays nothing and is kept here whatever the order does next.

Revision ID: main_0008
Revises: main_0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "main_0008"
down_revision = "main_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("payment_alert", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("payment_alert")
