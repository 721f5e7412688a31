"""The service suite on PostgreSQL, and racing committers on SQLite and PostgreSQL.

Every test of tests/unit/remote/test_service.py runs here again with ``db_url`` pointing at a
fresh PostgreSQL database; the concurrency tests run on both databases.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ama_remote.db import Database
from ama_remote.embedded import open_embedded
from ama_remote.errors import Conflict
from ama_remote.models import Asset, Membership, Project, User, Version
from ama_remote.service import Caller, Service
from tests.unit.remote.test_service import *  # noqa: F403  (the suite, re-run on PostgreSQL)
from tests.unit.remote.test_service import build, upload
from tests.unit.remote.test_service_packs import *  # noqa: F403  (packs, on PostgreSQL)


@pytest.fixture
def db_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'race.db'}"
    return str(request.getfixturevalue("postgres_url"))


def _race(work: list[Any]) -> list[Any]:
    """Run every callable at the same moment on its own thread; return results or errors."""
    barrier = threading.Barrier(len(work))
    results: list[Any] = [None] * len(work)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work[i]()
        except Exception as e:  # the test inspects every outcome
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_sixteen_racing_committers_get_gap_free_ordinals_and_one_winner_per_parent(
        any_db_url: str, tmp_path: Path) -> None:
    db = Database(any_db_url)
    db.migrate()
    service = Service(db)
    service.create_project("lab", (tmp_path / "storage").as_uri())
    service.add_user("ada", "ada@example.org")
    service.grant("lab", "ada", "admin")
    ada = service.authenticate(service.issue_token("ada"))
    service.put_class(ada, "lab", "models")
    base, objects = build({"a": b"base"})
    upload(service, ada, objects)
    first = service.commit(ada, "lab", "models", None, None, base, "base")
    jobs = []
    for i in range(16):
        manifest, objects = build({"a": f"candidate {i}".encode()})
        upload(service, ada, objects)
        if i % 2:
            jobs.append(lambda m=manifest, i=i: service.commit(
                ada, "lab", "models", None, None, m, f"new-{i}"))
        else:
            jobs.append(lambda m=manifest, i=i: service.commit(
                ada, "lab", "models", 1, first["manifest"], m, f"next-{i}"))
    results = _race(jobs)
    new_assets = [r for r in results[1::2]]
    next_versions = [r for r in results[0::2]]
    assert all(isinstance(r, dict) for r in new_assets), new_assets
    assert sorted(r["ordinal"] for r in new_assets) == list(range(2, 10))
    winners = [r for r in next_versions if isinstance(r, dict)]
    losers = [r for r in next_versions if not isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(e, Conflict) and e.latest == winners[0]["manifest"] for e in losers)
    with db.read() as s:
        ordinals = sorted(s.scalars(select(Asset.ordinal)))
        versions = s.scalars(select(Version).where(Version.asset_id == 1)).all()
    assert ordinals == list(range(1, 10))
    assert sorted(f"{v.major}.{v.minor}.{v.patch}" for v in versions) == ["0.0.0", "0.0.1"]
    db.dispose()


def test_racing_commits_with_one_idempotency_key_make_one_version(any_db_url: str,
                                                                  tmp_path: Path) -> None:
    db = Database(any_db_url)
    db.migrate()
    service = Service(db)
    service.create_project("lab", (tmp_path / "storage").as_uri())
    service.add_user("ada", "ada@example.org")
    ada = Caller(user_id=1, username="ada", is_admin=True)
    service.put_class(ada, "lab", "models")
    manifest, objects = build({"a": b"once"})
    upload(service, ada, objects)
    results = _race([lambda: service.commit(ada, "lab", "models", None, None, manifest, "k")
                     for _ in range(8)])
    assert all(r == results[0] for r in results), results
    with db.read() as s:
        assert len(s.scalars(select(Version)).all()) == 1
    db.dispose()


def test_two_processes_open_one_embedded_remote_at_once(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        callers = pool.map(_open_and_name, [str(tmp_path / "remote")] * 2)
    assert callers == [("local", True)] * 2
    service, caller = open_embedded(tmp_path / "remote")
    with service.db.read() as s:
        assert [u.username for u in s.scalars(select(User))] == ["local"]
        projects = s.scalars(select(Project)).all()
        assert [(p.name, p.storage_url) for p in projects] == [
            ("default", (tmp_path / "remote" / "storage").resolve().as_uri())]
        assert len(s.scalars(select(Membership)).all()) == 1
    assert service.list_projects(caller) == [{"name": "default", "role": "admin"}]


def _open_and_name(path: str) -> tuple[str, bool]:
    _, caller = open_embedded(path)
    return caller.username, caller.is_admin
