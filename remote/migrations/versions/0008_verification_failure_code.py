"""Verifications keep the status of their failure: 422 for bytes a hash refused (deleted),
507 for a storage that filled while the job joined the parts (kept, for the next run).

Revision ID: 0008_verification_failure_code
Revises: 0007_verification_upload
Create Date: 2026-12-06 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_verification_failure_code'
down_revision = '0007_verification_upload'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('verifications', sa.Column('failure_code', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verifications') as batch:
        batch.drop_column('failure_code')
