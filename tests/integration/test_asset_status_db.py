"""The asset status, deletion and class rules suite of
tests/unit/remote/test_asset_status.py, on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.unit.remote.test_asset_status import *  # noqa: F403  (the suite, re-run here)


@pytest.fixture
def db_url(postgres_url: str) -> str:
    return postgres_url
