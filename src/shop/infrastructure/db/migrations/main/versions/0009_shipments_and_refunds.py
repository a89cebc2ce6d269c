"""An order ships in parcels and is refunded by amount or lines: one table for its shipments, one for its refunds
(each once per idempotency key). The statuses `partly_shipped` and `partly_refunded` fit the existing columns.

Revision ID: main_0009
Revises: main_0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "main_0009"
down_revision = "main_0008"
branch_labels = None
depends_on = None

ORDER_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_shipments",
        sa.Column("order_id", ORDER_ID, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("carrier", sa.String(60), nullable=False),
        sa.Column("tracking", sa.String(100), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "number", name="pk_order_shipments"),
    )
    op.create_table(
        "order_refunds",
        sa.Column("order_id", ORDER_ID, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("gateway_ref", sa.String(255), nullable=True),
        sa.Column("failure", sa.String(300), nullable=True),
        sa.Column("staff_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "number", name="pk_order_refunds"),
        sa.UniqueConstraint("order_id", "idempotency_key", name="uq_order_refunds_key"),
        sa.CheckConstraint("amount > 0", name="ck_order_refunds_amount_positive"),
    )


def downgrade() -> None:
    op.drop_table("order_refunds")
    op.drop_table("order_shipments")
