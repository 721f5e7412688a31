"""Verifications name their upload: the storage's upload in parts whose parts a worker
hashes, so that one taking the job up later follows that upload rather than the newest.

Revision ID: 0007_verification_upload
Revises: 0006_verifications
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_verification_upload'
down_revision = '0006_verifications'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('verifications', sa.Column('upload_id', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verifications') as batch:
        batch.drop_column('upload_id')
