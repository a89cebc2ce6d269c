"""Catalogue: categories, products, variants, the catalogue version and full-text search.

Revision ID: posts_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "posts_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "categories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("categories.id", ondelete="SET NULL",
                                                         name="fk_categories_parent_id_categories"), nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.UniqueConstraint("slug", name="uq_categories_slug"),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id", ondelete="SET NULL",
                                                           name="fk_products_category_id_categories"), nullable=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("images", sa.JSON, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.Column("price_min", sa.BigInteger, nullable=False),
        sa.Column("price_max", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("in_stock", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("slug", name="uq_products_slug"),
    )
    op.create_index("ix_products_published_created", "products", ["published", "created_at"])
    op.create_index("ix_products_published_price", "products", ["published", "price_min"])
    op.create_index("ix_products_published_title", "products", ["published", "title"])
    op.create_index("ix_products_category", "products", ["category_id", "published"])
    op.create_table(
        "variants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id", ondelete="CASCADE",
                                                          name="fk_variants_product_id_products"), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_variants"),
        sa.UniqueConstraint("sku", name="uq_variants_sku"),
    )
    op.create_index("ix_variants_product_id", "variants", ["product_id"])
    version = op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_version"),
    )
    op.bulk_insert(version, [{"id": 1, "version": 1}])

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "ALTER TABLE products ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'B')) STORED"
        )
        op.execute("CREATE INDEX ix_products_search ON products USING GIN (search_vector)")
    elif dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE products_fts USING fts5(title, description, content='products', "
            "content_rowid='id', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN "
            "INSERT INTO products_fts(rowid, title, description) VALUES (new.id, new.title, new.description); END"
        )
        op.execute(
            "CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN "
            "INSERT INTO products_fts(products_fts, rowid, title, description) "
            "VALUES ('delete', old.id, old.title, old.description); END"
        )
        op.execute(
            "CREATE TRIGGER products_fts_update AFTER UPDATE OF title, description ON products BEGIN "
            "INSERT INTO products_fts(products_fts, rowid, title, description) "
            "VALUES ('delete', old.id, old.title, old.description); "
            "INSERT INTO products_fts(rowid, title, description) VALUES (new.id, new.title, new.description); END"
        )
    elif dialect in ("mysql", "mariadb"):
        op.execute("CREATE FULLTEXT INDEX ft_products_text ON products (title, description)")
        op.execute("CREATE FULLTEXT INDEX ft_products_title ON products (title)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS products_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS products_fts")
    op.drop_table("catalog_version")
    op.drop_table("variants")
    op.drop_table("products")
    op.drop_table("categories")
