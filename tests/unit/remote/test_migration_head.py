"""The newest-migration constant matches Alembic, and an up-to-date database skips Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from ama_remote.db import Database
from ama_remote.migrations import HEAD


def test_head_constant_is_alembics_head() -> None:
    config = Config()
    config.set_main_option("script_location", "ama_remote:migrations")
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]


def test_at_head_only_after_migrating(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
    assert not db.at_head()
    db.migrate()
    assert db.at_head()
    db.dispose()
