"""Two-factor authentication: a TOTP secret per user and hashed single-use recovery codes.

Revision ID: users_0002
Revises: users_0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "users_0002"
down_revision = "users_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("totp_recovery", sa.JSON, nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_recovery")
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
