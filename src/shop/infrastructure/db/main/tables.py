"""Main-store tables."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Integer, MetaData, String, Table

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
