"""Make users' email addresses unique, whatever their case: an email names its user at
OpenID Connect login, so two users may not share one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ama.plumbing.errors import FAILED, AmaError

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


class SharedEmail(AmaError):
    """Existing users share an email address: the index cannot be created until they don't."""

    exit_code = FAILED


def upgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT lower(email), username FROM users WHERE lower(email) IN "
        "(SELECT lower(email) FROM users GROUP BY lower(email) HAVING count(*) > 1) "
        "ORDER BY lower(email), username")).all()
    if shared:
        owners: dict[str, list[str]] = {}
        for email, username in shared:
            owners.setdefault(email, []).append(username)
        listed = "; ".join(f"{email}: {', '.join(names)}" for email, names in owners.items())
        raise SharedEmail(
            f"users share email addresses ({listed}); each user needs their own",
            "change all but one of each in the users table (UPDATE users SET email = '...' "
            "WHERE username = '...'), then run 'ama-server migrate' again")
    op.create_index('uq_users_email_lower', 'users', [sa.text('lower(email)')], unique=True)


def downgrade() -> None:
    op.drop_index('uq_users_email_lower', table_name='users')
