"""Fixtures of the integration tests that drive the server's garbage collection."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ama_remote.db import Database
from ama_remote.service import Service
from tests.services.server import RunningServer


@pytest.fixture(params=["file", "s3"])
def phased_server(request: pytest.FixtureRequest,
                  start_ama_server: Callable[..., RunningServer],
                  server_database_url: str) -> RunningServer:
    storage = None if request.param == "file" else \
        request.getfixturevalue("s3_bucket").storage_url("ama")
    return start_ama_server(server_database_url, storage)


@pytest.fixture
def collector(phased_server: RunningServer) -> Iterator[Service]:
    """The server's service layer in this process, on the server's database and storage:
    gc's steps one at a time."""
    service = Service(Database(phased_server.database_url))
    yield service
    service.db.dispose()
