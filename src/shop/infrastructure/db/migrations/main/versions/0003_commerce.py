"""Commerce: carts, vouchers, orders with their lines, applied payment events, idempotency keys.

Revision ID: main_0003
Revises: main_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "main_0003"
down_revision = "main_0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "carts",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(40), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("discount_code", sa.String(32), nullable=True),
        _time("created_at"), _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_carts"),
    )
    op.create_index("ix_carts_customer", "carts", ["customer_id", "status"])
    op.create_table(
        "cart_lines",
        sa.Column("cart_id", sa.String(40), nullable=False),
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cart_id", "id", name="pk_cart_lines"),
        sa.CheckConstraint("quantity > 0", name="ck_cart_lines_quantity_positive"),
    )
    op.create_table(
        "vouchers",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(24), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("min_order", sa.BigInteger(), nullable=True),
        _time("starts_at", True), _time("ends_at", True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("code", name="pk_vouchers"),
        sa.CheckConstraint("times_used >= 0", name="ck_vouchers_times_used_not_negative"),
    )
    op.create_table(
        "voucher_redemptions",
        sa.Column("voucher_code", sa.String(32), nullable=False),
        sa.Column("customer_key", sa.String(330), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("order_id", ID, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("voucher_code", "customer_key", "slot", name="pk_voucher_redemptions"),
    )
    op.create_index("ix_voucher_redemptions_order", "voucher_redemptions", ["order_id"])
    op.create_table(
        "orders",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("customer_id", sa.String(40), nullable=True),
        sa.Column("cart_id", sa.String(40), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in ("goods", "discount", "shipping", "tax", "total")),
        sa.Column("tax_rate", sa.String(16), nullable=False),
        sa.Column("prices_include_tax", sa.Boolean(), nullable=False),
        sa.Column("shipping_address", sa.JSON(), nullable=False),
        sa.Column("shipping_method", sa.String(32), nullable=False),
        sa.Column("shipping_method_name", sa.String(100), nullable=False),
        sa.Column("discount_code", sa.String(32), nullable=True),
        sa.Column("tracking", sa.String(100), nullable=True),
        sa.Column("payment_provider", sa.String(20), nullable=False),
        sa.Column("payment_status", sa.String(20), nullable=False),
        sa.Column("payment_ref", sa.String(255), nullable=True),
        sa.Column("payment_action_url", sa.String(1000), nullable=True),
        sa.Column("decline_reason", sa.String(100), nullable=True),
        _time("reservation_expires_at", True),
        sa.Column("access_key_hash", sa.String(64), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        _time("created_at"), _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        sa.UniqueConstraint("number", name="uq_orders_number"),
        sa.UniqueConstraint("cart_id", name="uq_orders_cart_id"),
    )
    op.create_index("ix_orders_customer", "orders", ["customer_id", "id"])
    op.create_index("ix_orders_payment", "orders", ["payment_provider", "payment_ref"])
    op.create_index("ix_orders_expiry", "orders", ["status", "reservation_expires_at"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(420), nullable=False),
        sa.Column("product_slug", sa.String(200), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "position", name="pk_order_lines"),
    )
    op.create_table(
        "payment_events",
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        _time("received_at"),
        sa.PrimaryKeyConstraint("provider", "event_id", name="pk_payment_events"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        _time("locked_until", True), _time("created_at"), _time("expires_at"),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    for table in ("idempotency_keys", "payment_events", "order_lines", "orders", "voucher_redemptions", "vouchers",
                  "cart_lines", "carts"):
        op.drop_table(table)
