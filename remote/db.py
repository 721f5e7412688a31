"""The remote's database: one SQLAlchemy engine over SQLite (default) or PostgreSQL.

SQLite runs in WAL mode with ``synchronous = FULL`` (a commit is durable when it returns),
foreign keys on and a busy timeout; a write transaction starts
with ``BEGIN IMMEDIATE`` so two writers queue for the lock up front instead of one failing
with "database is locked" halfway through (the pysqlite recipe from the SQLAlchemy docs:
the driver's own transaction handling is switched off and the ``begin`` event emits BEGIN).
PostgreSQL (``postgresql+psycopg://``) runs at READ COMMITTED; the service serializes racing
writes with ``SELECT … FOR UPDATE`` on the rows they depend on.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ama_remote.errors import DatabaseFull

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
_WRITE = "ama_write"
# PostgreSQL SQLSTATEs that mean "run the transaction again": serialization failure, deadlock.
_RETRY_SQLSTATES = {"40001", "40P01"}
_SQLITE_FULL = getattr(sqlite3, "SQLITE_FULL", 13)
_SQLITE_IOERR = getattr(sqlite3, "SQLITE_IOERR", 10)
_NEARLY_FULL = 1 << 20  # free bytes under which an I/O error of SQLite's is a full disk


class Database:
    """An engine plus the two ways the service talks to it: ``transaction()`` and ``read()``."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_hooks(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Yield a session in a write transaction; commit on success, roll back on error."""
        with self._full_as_error(), self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with Session(bind=conn, expire_on_commit=False, autoflush=True) as session:
                with session.begin():
                    yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Yield a session for reads (a deferred transaction, rolled back at the end)."""
        with self._full_as_error(), self.engine.connect() as conn:
            with Session(bind=conn, expire_on_commit=False) as session:
                yield session

    @contextmanager
    def _full_as_error(self) -> Iterator[None]:
        """Raise :class:`DatabaseFull` for a database error that is its disk being full."""
        try:
            yield
        except DBAPIError as e:
            if self._is_full(e):
                raise DatabaseFull() from e
            raise

    def _is_full(self, error: DBAPIError) -> bool:
        """Whether ``error`` is the database's disk (or quota) being full: SQLite's
        SQLITE_FULL, PostgreSQL's disk_full (53100); or SQLite's I/O error on a disk with
        next to no space left, which is how it answers when it cannot create the files of
        its log (``-wal``, ``-shm``) for want of space."""
        orig = error.orig
        if getattr(orig, "sqlstate", None) == "53100":
            return True
        if not isinstance(orig, sqlite3.Error):
            return False
        code = getattr(orig, "sqlite_errorcode", None)  # Python 3.11 on; else its words
        if (code & 0xFF) == _SQLITE_FULL if code is not None else \
                "database or disk is full" in str(orig):
            return True
        io_error = (code & 0xFF) == _SQLITE_IOERR if code is not None else \
            "disk I/O error" in str(orig)
        database = self.engine.url.database
        if not io_error or not database or database == ":memory:":
            return False
        folder = os.path.dirname(os.path.abspath(database))
        with suppress(OSError):
            return shutil.disk_usage(folder).free < _NEARLY_FULL
        return False

    def run(self, work: Callable[[Session], T], attempts: int = 8) -> T:
        """Return ``work(session)`` run in a write transaction, retried when it lost a race.

        A race is a unique-key collision with a concurrent writer (the retry sees the winner's
        row), a PostgreSQL serialization failure or deadlock, or SQLite still busy after the
        busy timeout. Other errors, and the last attempt's, propagate.
        """
        for attempt in range(attempts):
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as e:
                if attempt == attempts - 1 or not _is_race(e):
                    raise
                time.sleep(min(0.5, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    def at_head(self) -> bool:
        """Whether the schema is at the newest migration (one cheap query, no Alembic)."""
        from ama_remote.migrations import HEAD

        try:
            with self.engine.connect() as conn:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        except DBAPIError:
            return False
        return row is not None and row[0] == HEAD

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (Alembic, programmatic); safe to run twice."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", "ama_remote:migrations")
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self._full_as_error(), self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            config.attributes["connection"] = conn
            command.upgrade(config, revision)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _is_race(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: in WAL mode NORMAL may lose the last transactions at a power loss, and a
        # version the server answered 201 for would vanish, its ordinal handed out again.
        # Each commit pays one more fsync (of the WAL), which a version's commit can afford.
        cursor.execute("PRAGMA synchronous = FULL")
        # 16 MiB of pages (SQLite's default is 2): a pack's 100,000 rows go into two indexes
        # keyed by random ids, and their inserts took a quarter longer with the default.
        cursor.execute("PRAGMA cache_size = -16384")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def advisory_lock(conn: Any) -> None:
    """Serialize migrations across processes on PostgreSQL (SQLite's BEGIN IMMEDIATE does it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7231)"))
