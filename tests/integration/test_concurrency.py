"""Many clients at once against ama-server under gunicorn (SQLite and PostgreSQL, 2 and 4
workers): of racing commits and alias moves exactly one wins, the others get 409, and what
is recorded has no gaps and no duplicates."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ama.plumbing import transport
from ama.plumbing.transport import HttpTransport
from tests.integration.test_gunicorn import push, write_version
from tests.services.server import RunningServer

CLIENTS = 32
# Each client wins once, so it loses at most once to each of the others.
ATTEMPTS = CLIENTS + 1


@pytest.fixture(params=[2, 4], ids=["2-workers", "4-workers"])
def server(request: pytest.FixtureRequest, server_database_url: str,
           start_ama_server: Callable[..., RunningServer]) -> RunningServer:
    return start_ama_server(database_url=server_database_url, workers=request.param)


def at_once(work: Callable[[int], object]) -> list[object]:
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(work, range(CLIENTS)))


def test_racing_clients_one_winner_each_time_no_gaps(server: RunningServer,
                                                    tmp_path: Path) -> None:
    project = server.project
    admin = HttpTransport(server.url, server.token)
    admin.put_class(project, "models")

    def first_upload(i: int) -> int:
        client = HttpTransport(server.url, server.token)
        paths, manifest = write_version(tmp_path, {"a": f"first {i}".encode()})
        push(client, project, paths)
        return int(client.commit(project, "models", None, None, manifest, f"new-{i}")["ordinal"])

    ordinals = at_once(first_upload)
    assert sorted(ordinals) == list(range(1, CLIENTS + 1))  # type: ignore[type-var]

    # Every client reads the same latest version before any commits: the first round is a
    # real race for one parent, whatever the machine's speed.
    ready = threading.Barrier(CLIENTS)

    def next_version(i: int) -> int:
        client = HttpTransport(server.url, server.token)
        losses = 0
        for attempt in range(ATTEMPTS):
            parent = client.asset(project, "models", "1")["latest"]["manifest"]
            if attempt == 0:
                ready.wait()
            # The same file at every attempt: only the manifest (its parent) is new, so a
            # retry sends one object, not three, and the race stays on the commit.
            paths, manifest = write_version(tmp_path, {"a": f"next {i}".encode()},
                                            parent=parent)
            push(client, project, paths)
            try:
                client.commit(project, "models", 1, parent, manifest, f"v-{i}-{attempt}")
                return losses
            except transport.Conflict:
                losses += 1
        raise AssertionError(f"client {i} never won in {ATTEMPTS} attempts")

    losses = at_once(next_version)
    versions = admin.versions(project, "models", "1")
    assert sorted(v["version"] for v in versions) == sorted(
        f"0.0.{n}" for n in range(CLIENTS + 1))
    assert len({v["manifest"] for v in versions}) == CLIENTS + 1
    # Each version's parent is the one before it: a chain, no fork.
    assert [v["parent"] for v in versions[1:]] == [v["manifest"] for v in versions[:-1]]
    # The first round alone: one winner, the other 31 refused.
    assert sum(losses) >= CLIENTS - 1  # type: ignore[arg-type]

    admin.put_alias(project, "models", "prod", 1)

    def move(i: int) -> bool:
        client = HttpTransport(server.url, server.token)
        try:
            client.put_alias(project, "models", "prod", i + 1 if i else 2, expected=1)
            return True
        except transport.Conflict as lost:
            assert "points at models/" in lost.message
            return False

    won = at_once(move)
    assert won.count(True) == 1
    winner = won.index(True)
    assert admin.asset(project, "models", "prod")["ordinal"] == (winner + 1 if winner else 2)
