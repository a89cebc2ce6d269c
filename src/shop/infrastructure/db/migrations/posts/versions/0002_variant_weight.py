"""Variants get a shipping weight in whole grams; existing ones weigh 0 until staff set it.

Revision ID: posts_0002
Revises: posts_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "posts_0002"
down_revision = "posts_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("variants") as batch:
        batch.add_column(sa.Column("weight_grams", sa.Integer, server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("variants") as batch:
        batch.drop_column("weight_grams")
