"""32 clients at once against ama-server under gunicorn, on SQLite and PostgreSQL with 2 and 4
workers: every commit is a compare-and-swap on its parent, so exactly one of the clients
racing for a parent wins and the others get 409 and try again on the new latest; first
uploads of new assets get gap-free ordinals. Nothing is lost and nothing is recorded twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ama.plumbing.errors import Conflict
from ama.plumbing.transport import HttpTransport
from tests.services.server import RunningServer
from tests.unit.porcelain.published import publish

CLIENTS = 32


@pytest.fixture(params=[("sqlite", 2), ("sqlite", 4), ("postgresql", 2), ("postgresql", 4)],
                ids=lambda p: f"{p[0]}-{p[1]}-workers")
def raced_server(request: pytest.FixtureRequest, tmp_path: Path,
                 start_ama_server: Callable[..., RunningServer]) -> RunningServer:
    database, workers = request.param
    url = (f"sqlite:///{tmp_path / 'race.db'}" if database == "sqlite"
           else request.getfixturevalue("postgres_url"))
    return start_ama_server(url, workers=workers)


def test_32_clients_racing_lose_nothing_and_record_nothing_twice(
        raced_server: RunningServer) -> None:
    server = raced_server
    project = server.project
    HttpTransport(server.url, token=server.token).put_class(project, "race")
    first = publish(HttpTransport(server.url, token=server.token), project, "race",
                    {"start": b"0"})
    assert (first["ordinal"], first["version"]) == (1, "0.0.0")
    conflicts = 0
    lock = threading.Lock()
    # Every client reads the same latest version before any commits: the first round is a
    # real race for one parent, whatever the machine's speed.
    ready = threading.Barrier(CLIENTS)

    def next_version(n: int) -> dict[str, object]:
        """Commit this client's files as the next version of race/1, retrying on 409."""
        nonlocal conflicts
        transport = HttpTransport(server.url, token=server.token)
        first_round = True
        while True:
            latest = transport.asset(project, "race", "1")["latest"]["manifest"]
            if first_round:
                ready.wait()
                first_round = False
            try:
                return publish(transport, project, "race", {"client": str(n).encode()},
                               asset=1, parent=latest, message=f"client {n}")
            except Conflict:
                with lock:
                    conflicts += 1

    def new_asset(n: int) -> dict[str, object]:
        transport = HttpTransport(server.url, token=server.token)
        return publish(transport, project, "race", {"own": str(n).encode()},
                       message=f"asset of client {n}")

    with ThreadPoolExecutor(CLIENTS) as pool:
        versions = list(pool.map(next_version, range(CLIENTS)))
        assets = list(pool.map(new_asset, range(CLIENTS)))

    # Every client's commit is there once, and the version numbers have no gap.
    transport = HttpTransport(server.url, token=server.token)
    listed = transport.versions(project, "race", "1")
    assert [v["version"] for v in listed] == [f"0.0.{i}" for i in range(CLIENTS + 1)]
    assert sorted(v["manifest"] for v in listed[1:]) == sorted(str(v["manifest"])
                                                               for v in versions)
    assert sorted(v["message"] for v in listed[1:]) == sorted(f"client {n}"
                                                              for n in range(CLIENTS))
    # Each version's parent is the one before it: a chain, no fork.
    assert [v["parent"] for v in listed[1:]] == [v["manifest"] for v in listed[:-1]]
    assert conflicts >= CLIENTS - 1  # the first round alone: one winner, 31 refused
    # New assets: ordinals 2..33, each given once.
    assert sorted(int(str(a["ordinal"])) for a in assets) == list(range(2, CLIENTS + 2))
