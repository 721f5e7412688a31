"""Verifications: objects stored whole by an upload in parts whose bytes are hashed after
the upload's last request, and why a hash refused them.

Revision ID: 0006_verifications
Revises: 0005_packs
Create Date: 2026-12-04 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_verifications'
down_revision = '0005_packs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'verifications',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('oid', sa.String(length=64), nullable=False),
        sa.Column('claimed', sa.DateTime(), nullable=True),
        sa.Column('failure', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_verifications_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'oid', name=op.f('pk_verifications')))


def downgrade() -> None:
    op.drop_table('verifications')
