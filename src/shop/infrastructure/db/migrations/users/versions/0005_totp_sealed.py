"""Two-factor secrets are sealed (Fernet tokens of ~150 characters): room for them in totp_secret.

Revision ID: users_0005
Revises: users_0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "users_0005"
down_revision = "users_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(64), type_=sa.String(255), existing_nullable=True)


def downgrade() -> None:
    # sealed secrets do not fit back: a downgrade needs them cleared (2FA set up again) or kept in plain text
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(255), type_=sa.String(64), existing_nullable=True)
