"""Fixtures for the postgres test service (see ../shared/TESTING.md).

``postgres_server`` gives a server URL for the whole session: ``AMA_TEST_DATABASE_URL`` when it
is set (CI), else a throwaway cluster started here on a free loopback port with fsync off and
removed at the end. ``postgres_url`` gives each test a fresh, empty database and drops it
afterwards. PostgreSQL missing is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Read now: tests/conftest.py scrubs every AMA_* variable before each test runs.
_CONFIGURED_URL = os.environ.get("AMA_TEST_DATABASE_URL")
_PG_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path:
    versions = sorted(
        (p for p in _PG_ROOT.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
    )
    if not versions:
        pytest.fail(
            f"PostgreSQL is not installed (no {_PG_ROOT}/*/bin/pg_ctl): install it with "
            "'apt-get install -y postgresql', or set AMA_TEST_DATABASE_URL to a server's URL",
            pytrace=False,
        )
    return versions[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    # pg_ctl and initdb refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_postgres(args), capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server on which tests may create databases."""
    if _CONFIGURED_URL:
        yield _CONFIGURED_URL
        return
    pg_bin = _pg_bin()
    # Not tmp_path: the postgres user must be able to traverse the data directory's parents.
    root = Path(tempfile.mkdtemp(prefix="ama-pg."))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    _run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
          "-E", "UTF8", "--no-sync"])
    _run([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
          f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200", "start"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast",
                                     "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
