"""Audit admin actions and record the marks of the server's garbage collection.

An admin action on a user has no project and no class, and one made on the server's own
console (``ama-server user disable``) no user: those columns of ``audit`` may be null.
``gc_marks`` holds what ``ama-server gc`` condemned or deleted, which a commit checks.

Revision ID: 0004_admin
Revises: 0003_asset_status
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = '0004_admin'
down_revision = '0003_asset_status'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite alters a column by copying the table, which reflects the tables it refers to;
    # SQLAlchemy cannot reflect the index on lower(email) of users, which the copy of audit
    # does not need, and would say so on the user's terminal.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        with op.batch_alter_table('audit') as batch:
            batch.alter_column('project_id', existing_type=sa.Integer(), nullable=True)
            batch.alter_column('class_id', existing_type=sa.Integer(), nullable=True)
            batch.alter_column('user_id', existing_type=sa.Integer(), nullable=True)
            batch.create_index('ix_audit_at', ['at'])
    op.create_table(
        'gc_marks',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('oid', sa.String(length=64), nullable=False),
        sa.Column('marked', sa.DateTime(), nullable=False),
        sa.Column('swept', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE',
                                name='fk_gc_marks_project_id_projects'),
        sa.PrimaryKeyConstraint('project_id', 'oid', name='pk_gc_marks'),
    )


def downgrade() -> None:
    op.drop_table('gc_marks')
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        with op.batch_alter_table('audit') as batch:
            batch.drop_index('ix_audit_at')
            batch.alter_column('user_id', existing_type=sa.Integer(), nullable=False)
            batch.alter_column('class_id', existing_type=sa.Integer(), nullable=False)
            batch.alter_column('project_id', existing_type=sa.Integer(), nullable=False)
