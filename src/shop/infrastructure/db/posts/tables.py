"""Catalogue tables. Money is kept as whole minor units (cents) so every database compares it exactly."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    update,
)

from shop.infrastructure.db.types import UTCDateTime

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

categories = Table(
    "categories", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("parent_id", Integer, ForeignKey("categories.id", ondelete="SET NULL"), nullable=True),
    Column("position", Integer, nullable=False, default=0),
)

products = Table(
    "products", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("category_id", Integer, ForeignKey("categories.id", ondelete="SET NULL"), nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("images", JSON, nullable=False),
    Column("published", Boolean, nullable=False, default=True),
    # Projections of the variants and of stock (main store), kept by the writers so lists filter and sort fast.
    Column("price_min", BigInteger, nullable=False),
    Column("price_max", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("in_stock", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_products_published_created", "published", "created_at"),
    Index("ix_products_published_price", "published", "price_min"),
    Index("ix_products_published_title", "published", "title"),
    Index("ix_products_category", "category_id", "published"),
)

variants = Table(
    "variants", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("product_id", Integer, ForeignKey("products.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("title", String(200), nullable=False, default=""),
    Column("price", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("options", JSON, nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("weight_grams", Integer, nullable=False, default=0, server_default="0"),
)

# One row; bumped in the same transaction as any catalogue change so workers can drop what they cached.
catalog_version = Table(
    "catalog_version", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)
# the bump, run by every writer of the catalogue inside its transaction
NEXT_VERSION = update(catalog_version).where(catalog_version.c.id == 1).values(version=catalog_version.c.version + 1)
