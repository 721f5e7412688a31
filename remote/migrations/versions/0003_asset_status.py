"""Give assets a status (active, deprecated, obsolete) and a soft deletion time: writers
mark an asset's standing, project admins delete an asset (its versions are hidden, its
objects kept) and restore it.

Revision ID: 0003_asset_status
Revises: 0002
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_asset_status'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a NOT NULL column with a default to an existing table
    # any other way that Alembic knows of, and it is a plain ALTER on PostgreSQL.
    with op.batch_alter_table('assets') as batch:
        batch.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                   server_default='active'))
        batch.add_column(sa.Column('deleted', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('assets') as batch:
        batch.drop_column('deleted')
        batch.drop_column('status')
