"""Packs: many small objects stored in one file per pack (ama-format(5) PACKS), and where
each packed object lies in its pack.

Revision ID: 0005_packs
Revises: 0004_admin
Create Date: 2026-12-04 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_packs'
down_revision = '0004_admin'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'packs',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('pid', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('verified', sa.Boolean(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_packs_project_id_projects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'pid', name=op.f('pk_packs')))
    op.create_table(
        'packed_objects',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('oid', sa.String(length=64), nullable=False),
        sa.Column('pid', sa.String(length=64), nullable=False),
        sa.Column('offset', sa.BigInteger(), nullable=False),
        sa.Column('length', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_packed_objects_project_id_projects'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'oid', name=op.f('pk_packed_objects')))
    op.create_index('ix_packed_objects_project_id_pid', 'packed_objects',
                    ['project_id', 'pid'])


def downgrade() -> None:
    op.drop_index('ix_packed_objects_project_id_pid', table_name='packed_objects')
    op.drop_table('packed_objects')
    op.drop_table('packs')
