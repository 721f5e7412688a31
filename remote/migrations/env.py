"""Alembic environment: run migrations on the connection ``Database.migrate()`` hands over.

The whole upgrade runs in one write transaction (``BEGIN IMMEDIATE`` on SQLite, an advisory
lock on PostgreSQL), so two processes migrating at once take turns and the second finds
nothing left to do.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ama_remote.db import advisory_lock
from ama_remote.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _upgrade(conn)
        engine.dispose()
    else:
        _upgrade(connection)


def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
    with connection.begin():
        advisory_lock(connection)
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
