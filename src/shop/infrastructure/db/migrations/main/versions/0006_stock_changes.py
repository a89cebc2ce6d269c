"""Stock levels indexed by when they last changed: every worker reads the recent changes a few times a second.

Revision ID: main_0006
Revises: main_0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "main_0006"
down_revision = "main_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_stock_levels_updated_at", "stock_levels", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_stock_levels_updated_at", table_name="stock_levels")
