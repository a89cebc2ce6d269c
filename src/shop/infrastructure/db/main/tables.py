"""Main-store tables."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shop.infrastructure.db.types import UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
})

stock_levels = Table(
    "stock_levels", metadata,
    Column("sku", String(64), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, default=0),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    Index("ix_stock_levels_updated_at", "updated_at"),  # every worker reads the recent changes (StockWatcher)
)

# ids are 64-bit where the database can auto-increment one; SQLite only auto-increments INTEGER PRIMARY KEY
OUTBOX_ID = BigInteger().with_variant(Integer, "sqlite")

outbox = Table(
    "outbox", metadata,
    Column("id", OUTBOX_ID, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("available_at", UTCDateTime, nullable=False),  # due from then; a claim moves it to the lease's end
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("last_error", String(300)),  # one short line, never a secret
    Column("claimed_until", UTCDateTime),
    Column("claim_token", String(32)),  # who holds the lease: outcomes are recorded only by the holder
    Column("sent_at", UTCDateTime),
    Column("dead_at", UTCDateTime),  # given up: kept for a person to look at, never claimed again
    CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    # "due and not done", in the order claims read it; IS NULL is an equality for the index on all three databases
    Index("ix_outbox_due", "kind", "sent_at", "dead_at", "available_at"),
)

# --- commerce: carts, vouchers, orders, payments, idempotency keys -------------------------------------------------
# Money columns hold integer minor units of the row's currency; rates and percentages are decimal text.

carts = Table(
    "carts", metadata,
    Column("id", String(40), primary_key=True),
    Column("customer_id", String(40)),
    Column("status", String(16), nullable=False),
    Column("discount_code", String(32)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_carts_customer", "customer_id", "status"),
)

cart_lines = Table(
    "cart_lines", metadata,
    Column("cart_id", String(40), nullable=False),
    Column("id", String(24), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("cart_id", "id", name="pk_cart_lines"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)

vouchers = Table(
    "vouchers", metadata,
    Column("code", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("value", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("min_order", BigInteger),
    Column("starts_at", UTCDateTime),
    Column("ends_at", UTCDateTime),
    Column("usage_limit", Integer),
    Column("per_customer_limit", Integer),
    Column("times_used", Integer, nullable=False, default=0, server_default="0"),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("times_used >= 0", name="times_used_not_negative"),
)

# One row per redemption "slot" of a customer: the primary key makes a per-customer limit hold under concurrency.
voucher_redemptions = Table(
    "voucher_redemptions", metadata,
    Column("voucher_code", String(32), nullable=False),
    Column("customer_key", String(330), nullable=False),
    Column("slot", Integer, nullable=False),
    Column("order_id", OUTBOX_ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("voucher_code", "customer_key", "slot", name="pk_voucher_redemptions"),
    Index("ix_voucher_redemptions_order", "order_id"),
)

orders = Table(
    "orders", metadata,
    Column("id", OUTBOX_ID, primary_key=True, autoincrement=True),
    Column("number", String(24), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("email", String(320), nullable=False),
    Column("customer_id", String(40)),
    Column("cart_id", String(40), unique=True),  # a cart becomes at most one order
    Column("currency", String(3), nullable=False),
    Column("goods", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("shipping", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("tax_rate", String(16), nullable=False),
    Column("prices_include_tax", Boolean, nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("shipping_method", String(32), nullable=False),
    Column("shipping_method_name", String(100), nullable=False),
    Column("discount_code", String(32)),
    Column("tracking", String(100)),
    Column("payment_provider", String(20), nullable=False),
    Column("payment_status", String(20), nullable=False),
    Column("payment_ref", String(255)),
    Column("payment_action_url", String(1000)),
    Column("decline_reason", String(100)),
    Column("payment_alert", String(1000)),  # for staff: money that came but did not match the order
    Column("reservation_expires_at", UTCDateTime),
    Column("access_key_hash", String(64), nullable=False),
    Column("history", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_orders_customer", "customer_id", "id"),
    Index("ix_orders_payment", "payment_provider", "payment_ref"),
    Index("ix_orders_expiry", "status", "reservation_expires_at"),
)

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", OUTBOX_ID, nullable=False),
    Column("position", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(420), nullable=False),
    Column("product_slug", String(200), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("weight_grams", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "position", name="pk_order_lines"),
)

# Parcels of an order: which units (of which order lines, numbered from 1) left with which carrier. Read with the
# order; written under its row lock, so an order's shipments are numbered 1, 2, … without a race
order_shipments = Table(
    "order_shipments", metadata,
    Column("order_id", OUTBOX_ID, nullable=False),
    Column("number", Integer, nullable=False),
    Column("lines", JSON, nullable=False),  # [[line, units], …]
    Column("carrier", String(60), nullable=False),
    Column("tracking", String(100), nullable=False),
    Column("shipped_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("order_id", "number", name="pk_order_shipments"),
)

# Refunds of an order, each once per idempotency key: recorded pending (holding its amount against what is left)
# before the gateway is asked, then settled as the gateway answered
order_refunds = Table(
    "order_refunds", metadata,
    Column("order_id", OUTBOX_ID, nullable=False),
    Column("number", Integer, nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),  # minor units of the order's currency
    Column("lines", JSON, nullable=False),  # [[line, units, restocked units], …]
    Column("reason", String(500), nullable=False),
    Column("status", String(16), nullable=False),
    Column("gateway_ref", String(255)),
    Column("failure", String(300)),  # one short line, never a secret
    Column("staff_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("order_id", "number", name="pk_order_refunds"),
    UniqueConstraint("order_id", "idempotency_key", name="uq_order_refunds_key"),
    CheckConstraint("amount > 0", name="amount_positive"),
)

# Webhook events already applied: inserted in the same transaction as their effect, so a replay changes nothing.
payment_events = Table(
    "payment_events", metadata,
    Column("provider", String(20), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("provider", "event_id", name="pk_payment_events"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer),  # None while the first request is still running
    Column("response", JSON),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # the order the request placed and its guest access key, written in the order's transaction: a retry whose
    # first answer was lost finishes that order instead of placing another
    Column("order_number", String(24)),
    Column("order_access_key", String(64)),
    PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    Index("ix_idempotency_keys_expires", "expires_at"),
)

# Storefront sessions: the cookie holds a random id, the table only its SHA-256.
web_sessions = Table(
    "web_sessions", metadata,
    Column("key", String(64), primary_key=True),
    Column("user_id", String(40)),  # who is signed in: a password reset ends every session of theirs
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_web_sessions_expires", "expires_at"),
    Index("ix_web_sessions_user", "user_id"),
)

# one row per HTTP request, written in batches by each worker's request-log writer. Two indexes only: every
# write pays for each one, and the panel's searches by status or user are narrowed by time first
request_log = Table(
    "request_log", metadata,
    Column("id", String(64), primary_key=True),  # the request id, also sent back as X-Request-ID
    Column("at", UTCDateTime, nullable=False),  # when the request arrived
    Column("method", String(16), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("route", String(255), nullable=True),  # the route template (/api/v1/products/{slug}); null if none matched
    Column("query", Text, nullable=True),  # redacted
    Column("status", SmallInteger, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("bytes_in", BigInteger, nullable=False),
    Column("bytes_out", BigInteger, nullable=False),
    Column("client_ip", String(45), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("user_id", String(64), nullable=True),
    Column("worker_pid", Integer, nullable=False),
    Column("pool", String(32), nullable=False),
    Column("details", JSON, nullable=False),  # redacted request/response headers and body fields
    Index("ix_request_log_at", "at"),
    Index("ix_request_log_route_at", "route", "at"),
)
