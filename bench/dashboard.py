"""Server time of the web dashboard's heaviest pages, against a target of 300 ms.

A class of 10,000 assets and two versions of 100,000 files each (1,000 folders of 100
files; the same files in one flat folder) are made through the service layer: the files'
objects in one bulk store, the assets' rows in one transaction from the first asset's. Then
each page is asked for through the app in this process (falcon's test client: the time is
the server's own, without a network) and the median of ``--repeat`` runs is printed, on
SQLite and on PostgreSQL (a throwaway cluster, as the tests start).

    .venv/bin/python bench/dashboard.py                  # both databases, full size
    .venv/bin/python bench/dashboard.py --db sqlite --assets 1000 --files 10000   # quick
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.services.pgcluster import throwaway_cluster  # noqa: E402

TARGET_MS = 300.0


@dataclass
class Row:
    database: str
    page: str
    median_ms: float
    worst_ms: float
    queries: int


@contextmanager
def database_url(kind: str, scratch: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{scratch / 'ama.db'}"
        return
    import psycopg

    with throwaway_cluster(prefix="ama-bench-pg.") as server:
        with psycopg.connect(server.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ama_bench")
        yield server.rsplit("/", 1)[0] + "/ama_bench"


def store(service: Any, admin: Any, scratch: Path, objects: dict[str, bytes]) -> None:
    """Store ``objects`` in one bulk operation, from files in ``scratch``."""
    folder = scratch / "objects"
    folder.mkdir(exist_ok=True)
    listed = []
    for oid, data in objects.items():
        path = folder / oid
        path.write_bytes(data)
        listed.append((oid, len(data), str(path)))
    answer = service.put_object_files(admin, "demo", listed)
    failed = [o for o in answer["objects"] if "error" in o]
    if failed:
        raise SystemExit(f"bench: storing objects failed: {failed[:3]}")
    shutil.rmtree(folder)


def make_versions(service: Any, admin: Any, scratch: Path, files: int, folders: int
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two versions of ``files`` files: in ``folders`` folders, and all in one folder."""
    from ama.plumbing.objects import Author
    from tests.unit.remote.test_service import build

    per = files // folders
    contents = {n: n.to_bytes(8, "big") for n in range(files)}
    nested = {f"d{n // per:04}/f{n:06}.bin": data for n, data in contents.items()}
    flat = {f"flat/f{n:06}.bin": data for n, data in contents.items()}
    made = []
    for shape in (nested, flat):
        manifest, objects = build(shape, None, (), "bench", Author("Ada", "ada@example.org"))
        store(service, admin, scratch, objects)
        made.append(service.commit(admin, "demo", "big", None, None, manifest,
                                   f"bench-{manifest}"))
    return made[0], made[1]


def make_assets(service: Any, admin: Any, assets: int) -> None:
    """``assets`` assets in class "many", each with one version, every tenth tagged."""
    from ama.plumbing.objects import Author
    from ama_remote.models import Asset, AssetClass, Version
    from tests.unit.remote.test_service import build, upload

    manifest, objects = build({"x.txt": b"x"}, None, (), "", Author("Ada", "ada@example.org"))
    upload(service, admin, objects, "demo")
    service.commit(admin, "demo", "many", None, None, manifest, "bench-first")
    with service.db.transaction() as s:
        klass = s.query(AssetClass).filter_by(name="many").one()
        first = s.query(Asset).filter_by(class_id=klass.id, ordinal=1).one()
        version = s.query(Version).filter_by(asset_id=first.id).one()
        added = [Asset(class_id=klass.id, ordinal=n, title=f"asset {n:05}",
                       tags=["birds"] if n % 10 == 0 else [],
                       created=first.created + timedelta(minutes=n))
                 for n in range(2, assets + 1)]
        s.add_all(added)
        s.flush()
        s.add_all([Version(asset_id=a.id, major=0, minor=0, patch=0,
                           manifest_id=version.manifest_id, tree_id=version.tree_id,
                           author_id=version.author_id, created=a.created) for a in added])


def measure(kind: str, scratch: Path, assets: int, files: int, folders: int,
            repeat: int) -> list[Row]:
    import falcon.testing
    from sqlalchemy import event

    from ama_remote.app import create_app
    from ama_remote.config import ServerConfig
    from ama_remote.db import Database
    from ama_remote.service import Service

    with database_url(kind, scratch) as url:
        db = Database(url)
        db.migrate()
        service = Service(db)
        service.create_project("demo", (scratch / "storage").as_uri())
        service.add_user("ada", "ada@example.org", admin=True)
        admin = service.authenticate(service.issue_token("ada"))
        service.put_class(admin, "demo", "many")
        service.put_class(admin, "demo", "big")
        started = time.perf_counter()
        make_assets(service, admin, assets)
        nested, flat = make_versions(service, admin, scratch, files, folders)
        print(f"{kind}: made the data in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        client = falcon.testing.TestClient(create_app(service, ServerConfig(scratch, "")))
        cookie = {"Cookie": f"ama_session={service.issue_token('ada')}"}
        last_page = (assets + 49) // 50
        per = files // folders
        big = f"/p/demo/c/big/a/{nested['ordinal']}/v/0.0.0"
        wide = f"/p/demo/c/big/a/{flat['ordinal']}/v/0.0.0"
        pages = {
            "assets, first page": ("/p/demo/c/many", "asset 00002"),
            "assets, a later page": (f"/p/demo/c/many?page={last_page - 1}", "asset"),
            "assets, filtered (tag, by upload)": ("/p/demo/c/many?tag=birds&sort=updated",
                                                  "asset 00010"),
            "version, first page": (big, f"{folders} entries"),
            "version, a deep folder": (f"{big}?path=d{folders // 2:04}",
                                       f"f{(folders // 2) * per:06}.bin"),
            "flat folder, first page": (f"{wide}?path=flat", "f000000.bin"),
            "flat folder, last page": (f"{wide}?path=flat&page={(files + 199) // 200}",
                                       f"f{files - 1:06}.bin"),
        }
        count = [0]
        event.listen(db.engine, "before_cursor_execute", lambda *a: count.__setitem__(
            0, count[0] + 1))
        rows = []
        for label, (path, expect) in pages.items():
            times, queries = [], 0
            for _ in range(repeat):
                before = count[0]
                start = time.perf_counter()
                answer = client.simulate_get(path, headers=cookie)
                times.append((time.perf_counter() - start) * 1000)
                queries = count[0] - before
                if answer.status_code != 200 or expect not in answer.text:
                    raise SystemExit(f"bench: {path} answered {answer.status_code} "
                                     f"without {expect!r}")
            rows.append(Row(kind, label, statistics.median(times), max(times), queries))
        db.dispose()
    return rows


def table(rows: list[Row]) -> str:
    head = ("database", "page", "median ms", "worst ms", "queries", f"< {TARGET_MS:.0f} ms")
    cells = [head] + [(r.database, r.page, f"{r.median_ms:.1f}", f"{r.worst_ms:.1f}",
                       str(r.queries), "yes" if r.median_ms < TARGET_MS else "NO")
                      for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                     for row in cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for kind in args.db.split(","):
        scratch = Path(tempfile.mkdtemp(prefix=f"ama-bench-dashboard-{kind}."))
        try:
            rows += measure(kind, scratch, args.assets, args.files, args.folders,
                            args.repeat)
        finally:
            if not args.keep:
                shutil.rmtree(scratch, ignore_errors=True)
    print(table(rows))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "dashboard.json").write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(),
        "assets": args.assets, "files": args.files, "folders": args.folders,
        "repeat": args.repeat, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
