"""The remote's SQLite database: settings every connection gets."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from ama_remote.db import Database
from ama_remote.embedded import open_embedded

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_every_connection_of_the_server_database_syncs_fully(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
    try:
        with db.read() as s:
            assert s.execute(text("PRAGMA synchronous")).scalar() == FULL
            assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        with db.transaction() as s:
            assert s.execute(text("PRAGMA synchronous")).scalar() == FULL
    finally:
        db.dispose()


def test_the_embedded_remote_syncs_fully_too(tmp_path: Path) -> None:
    service, _caller = open_embedded(tmp_path / "remote")
    try:
        with service.db.read() as s:
            assert s.execute(text("PRAGMA synchronous")).scalar() == FULL
    finally:
        service.db.dispose()
