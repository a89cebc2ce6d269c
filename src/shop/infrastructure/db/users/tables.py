"""Users-store tables: people, their password hashes and their refresh tokens (as hashes)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, MetaData, String, Table

from shop.infrastructure.db.types import UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

users = Table(
    "users", metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),  # casefolded: one account per address
    Column("name", String(200), nullable=False, default=""),
    Column("roles", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    Column("phone", String(20), nullable=True),
    Column("email_verified_at", UTCDateTime, nullable=True),
    Column("phone_verified_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("totp_secret", String(255), nullable=True),  # sealed: "fernet:" and a token (~150 characters)
    Column("totp_enabled_at", UTCDateTime, nullable=True),
    Column("totp_recovery", JSON, nullable=True),  # SHA-256 hashes of the unused recovery codes
    Column("totp_last_step", BigInteger, nullable=True),  # the 30-second step of the last code used
)

credentials = Table(
    "credentials", metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("family_id", String(36), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Index("ix_refresh_tokens_family", "family_id"),
    Index("ix_refresh_tokens_user", "user_id"),
    Index("ix_refresh_tokens_revoked", "revoked_at"),  # sessions that ended lately, polled by every web worker
)
