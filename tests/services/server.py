"""Fixtures for a real ``ama-server serve`` (gunicorn, 2 workers) on 127.0.0.1.

- ``serving(env, log, workers=2)``: a context manager that runs ``ama-server serve`` for
  the server home and database named in ``env`` (``AMA_SERVER_HOME``, ``AMA_DATABASE_URL``;
  already set up with ``ama-server init``) on a free loopback port, waits until it answers,
  yields a :class:`ServerProcess` (its ``url``) and stops it at the end. ``start_server``
  and ``ServerProcess.stop()`` do the same in two steps.
- ``start_ama_server`` (per test): a factory, ``start(database_url=None, storage_url=None)``,
  that runs ``ama-server init`` (an admin user, whose token it keeps) and ``project add
  demo`` on the storage URL in this process (``setup_ama_server``), then ``serve`` on a
  free loopback port; waits until the server answers and returns a :class:`RunningServer`.
  Every server it started is stopped after the test (waited for at the end of the session).
  Defaults: SQLite in tmp_path, ``file://`` storage in tmp_path.
- ``server_database_url``: parametrized over ``sqlite`` and ``postgresql`` (a fresh database
  from ``postgres_url``).
- ``server_storage_url``: parametrized over ``file``, ``s3`` (moto, ``s3_bucket``) and ``gcs``
  (fake-gcs-server, ``gcs_bucket``); those fixtures put the endpoints in the environment,
  which the server process inherits.
- ``ama_server``: a started server on every combination of the two above.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PROJECT = "demo"
ADMIN = "admin"
START_TIMEOUT = 30.0


def ama_server_command() -> list[str]:
    """The installed ``ama-server`` console script beside this Python, else the module."""
    script = Path(sys.executable).parent / "ama-server"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ama_remote.cli"]


@dataclass
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    token: str  # the admin's token
    project: str
    home: Path
    database_url: str
    storage_url: str
    log: Path  # the server's stderr: gunicorn's error and access logs
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        return {**os.environ, "AMA_SERVER_HOME": str(self.home),
                "AMA_DATABASE_URL": self.database_url}

    def setup(self, *args: str) -> str:
        """Run ``ama-server ARGS`` in this process (:func:`setup_ama_server`); its stdout."""
        return setup_ama_server(self.home, self.database_url, *args)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ama-server ARGS`` on this server's home and database."""
        return run_ama_server(self.env(), *args, check=check)

    def invoke(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ama-server ARGS`` like :meth:`run`, but in this process
        (:func:`invoke_ama_server`)."""
        return invoke_ama_server(self.home, self.database_url, *args, check=check)


def setup_ama_server(home: Path, database_url: str, *args: str) -> str:
    """Run ``ama-server ARGS`` on ``home`` and ``database_url`` in this process; return its
    stdout. For the set-up of tests that are not about the installed command: a process per
    call costs a second of start-up on a loaded machine, dozens of them per test."""
    from click.testing import CliRunner

    from ama_remote.cli import cli

    done = CliRunner().invoke(cli, ["--home", str(home), "--database-url", database_url,
                                    *args])
    if done.exit_code != 0:
        raise AssertionError(f"ama-server {' '.join(args)} exited {done.exit_code}:\n"
                             f"{done.output}") from done.exception
    return done.stdout


def invoke_ama_server(home: Path, database_url: str, *args: str,
                      check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ama-server ARGS`` on ``home`` and ``database_url`` in this process; return its
    exit status, stdout and stderr as :func:`run_ama_server` does. The same command code as
    the installed script runs, without the second or so a process of its own costs (its
    imports) on a loaded machine: for tests of what a command does rather than of the
    console script. An exception the command does not turn into an exit status is raised
    here, as the process would have died of it with a traceback."""
    from click.testing import CliRunner

    from ama_remote.cli import cli

    command = ["--home", str(home), "--database-url", database_url, *args]
    done = CliRunner().invoke(cli, command, prog_name="ama-server")
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        raise AssertionError(f"ama-server {' '.join(args)} raised {done.exception!r}:\n"
                             f"{done.output}") from done.exception
    result = subprocess.CompletedProcess([*ama_server_command(), *command], done.exit_code,
                                         done.stdout, done.stderr)
    if check and done.exit_code != 0:
        raise AssertionError(f"ama-server {' '.join(args)} exited {done.exit_code}:\n"
                             f"{done.stdout}{done.stderr}")
    return result


def run_ama_server(env: dict[str, str], *args: str,
                   check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*ama_server_command(), *args], env=env, capture_output=True,
                          text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"ama-server {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}{done.stderr}")
    return done


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(process: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    """Return True once the server answers; False if it exited (a port taken, say)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            # Any HTTP answer will do: without a token this is a 401 from the app itself.
            requests.get(f"{url}/v1/auth/me", timeout=5)
            return True
        except requests.RequestException:  # not listening yet, or a worker still booting
            time.sleep(0.05)
    _stop(process)
    pytest.fail(f"ama-server did not answer at {url} within {START_TIMEOUT}s; its log:\n"
                f"{log.read_text(errors='replace')[-3000:]}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # gunicorn stops its workers on SIGTERM
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class ServerProcess:
    """An ``ama-server serve`` started by :func:`start_server`."""

    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path  # its stdout and stderr: gunicorn's error and access logs

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 15 s); stopping twice is fine."""
        _stop(self.process)

    def stop_soon(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting the second or so gunicorn takes
        to: it is waited for at the end of the session, as the servers of
        ``start_ama_server`` are. For a test that is done with its server and its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            _stopping.append(self.process)


def start_server(env: Mapping[str, str], log: Path, workers: int = 2,
                 wrapper: Sequence[str] = ()) -> ServerProcess:
    """Start ``ama-server serve`` with ``env`` on a free port of 127.0.0.1, appending its
    output to ``log``; return once it answers. Fails the test if it never does. ``wrapper``
    is a command the server runs under (a small disk's namespace, ``tests.services.disk``)."""
    for _attempt in range(3):  # another process may take the free port first
        url = f"http://127.0.0.1:{free_port()}"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [*wrapper, *ama_server_command(), "serve", "--bind",
                 url.removeprefix("http://"), "--workers", str(workers)],
                env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        if _wait(process, url, log):
            return ServerProcess(url, process, log)
        _stop(process)
    pytest.fail(f"ama-server serve exited at start; its log:\n"
                f"{log.read_text(errors='replace')[-3000:]}", pytrace=False)


@contextmanager
def serving(env: Mapping[str, str], log: Path, workers: int = 2,
            wrapper: Sequence[str] = ()) -> Iterator[ServerProcess]:
    """Run ``ama-server serve`` (see :func:`start_server`) for the duration of the block."""
    server = start_server(env, log, workers, wrapper)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_ama_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Yield ``start(database_url=None, storage_url=None, workers=2)`` -> RunningServer."""
    started: list[ServerProcess] = []
    count = 0

    def start(database_url: str | None = None, storage_url: str | None = None,
              workers: int = 2) -> RunningServer:
        nonlocal count
        count += 1
        _stopping[:] = [p for p in _stopping if p.poll() is None]  # reap those that exited
        root = tmp_path / f"server-{count}"
        home = root / "home"
        database_url = database_url or f"sqlite:///{root / 'ama.db'}"
        storage_url = storage_url or f"file://{root / 'storage'}"
        env = {**os.environ, "AMA_SERVER_HOME": str(home), "AMA_DATABASE_URL": database_url}
        token = setup_ama_server(home, database_url, "init", "--admin", ADMIN, "--email",
                                 "admin@example.org", "--storage", storage_url).strip()
        setup_ama_server(home, database_url, "project", "add", PROJECT, "--storage",
                         storage_url, "--no-check")
        setup_ama_server(home, database_url, "project", "grant", PROJECT, ADMIN, "admin")
        server = start_server(env, root / "server.log", workers)
        started.append(server)
        return RunningServer(server.url, token, PROJECT, home, database_url, storage_url,
                             server.log, server.process)

    try:
        yield start
    finally:
        # The test is done with them: they stop while the next tests run (a gunicorn takes
        # a second or more to), and are waited for before the session ends.
        for server in started:
            if server.process.poll() is None:
                server.process.terminate()
                _stopping.append(server.process)


_stopping: list[subprocess.Popen[bytes]] = []


@pytest.fixture(scope="session", autouse=True)
def _servers_stopped() -> Iterator[None]:
    """Wait, at the end of the session, for the servers ``start_ama_server`` stopped."""
    yield
    while _stopping:
        _stop(_stopping.pop())


@pytest.fixture(params=["sqlite", "postgresql"])
def server_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["file", "s3", "gcs"])
def server_storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path / 'server-storage'}"
    bucket = request.getfixturevalue("s3_bucket" if request.param == "s3" else "gcs_bucket")
    url: str = bucket.storage_url("ama")
    return url


@pytest.fixture
def ama_server(start_ama_server: Callable[..., RunningServer], server_database_url: str,
               server_storage_url: str) -> RunningServer:
    """A running server on each database and storage kind."""
    return start_ama_server(server_database_url, server_storage_url)
