"""Shared fixtures: every test runs with a scrubbed environment and its own asset store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.services.postgres", "tests.services.s3", "tests.services.gcs",
                  "tests.services.disk",
                  "tests.services.wan",
                  "tests.services.server", "tests.services.browser"]


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Scrub HOME and every AMA_* variable; point HOME and AMA_HOME inside tmp_path."""
    for name in list(os.environ):
        if name.startswith(("AMA_", "ASSET_SERVER_", "GIT_")) or name == "HOME":
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AMA_HOME", str(home / ".ama"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AMA_AUTHOR_NAME", "Test User")
    monkeypatch.setenv("AMA_AUTHOR_EMAIL", "test@example.org")
    return home
