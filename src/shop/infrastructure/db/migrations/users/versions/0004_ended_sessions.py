"""Sessions that ended lately: an index on when refresh tokens were revoked, which every web worker polls.

Revision ID: users_0004
Revises: users_0003
Create Date: 2026-12-08
"""

from alembic import op

revision = "users_0004"
down_revision = "users_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_refresh_tokens_revoked", "refresh_tokens", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_revoked", table_name="refresh_tokens")
