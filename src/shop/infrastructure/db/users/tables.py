"""Users-store tables. The accounts work extends these; the foundation only needs the store to exist."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table

from shop.infrastructure.db.types import UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
})

users = Table(
    "users", metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),  # casefolded: one account per address
    Column("name", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False, default="active"),
    Column("created_at", UTCDateTime, nullable=False),
)
