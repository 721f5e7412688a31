"""The load benchmark: N clients for T seconds of mixed operations against
``ama-server serve --workers 4`` on PostgreSQL on 127.0.0.1; per-route count, errors and
p50/p95/p99 latency, written to bench/results/load.json. ``--soak S`` runs S seconds instead
and samples the resident memory of the server's processes."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama.plumbing.transport import HttpTransport
from bench.remote import PROJECT, _push, ama_server, postgres

RESULTS = Path(__file__).parent / "results"


def version(data: bytes, parent: str | None) -> tuple[dict[str, bytes], str]:
    tree = Tree.of([TreeEntry("blob", hash_bytes(data), len(data), "data")]).serialize()
    manifest = Manifest(tree=hash_bytes(tree), author=Author("L", "l@example.org"),
                        created="2026-12-04T12:00:00Z",
                        parents=(parent,) if parent else ()).serialize()
    objects = {hash_bytes(data): data, hash_bytes(tree): tree, hash_bytes(manifest): manifest}
    return objects, hash_bytes(manifest)


def client(url: str, token: str, until: float, scratch: Path,
           times: dict[str, list[float]], errors: dict[str, int], lock: threading.Lock) -> None:
    http = HttpTransport(url, token)
    own: int | None = None
    latest: str | None = None

    def timed(route: str, call, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        except Exception:
            with lock:
                errors[route] = errors.get(route, 0) + 1
            return None
        finally:
            with lock:
                times.setdefault(route, []).append(time.perf_counter() - start)

    while time.monotonic() < until:
        timed("GET classes", http.classes, PROJECT)
        timed("GET assets", lambda: list(http.assets(PROJECT, "load")))
        objects, manifest = version(uuid.uuid4().bytes, latest)
        timed("POST objects/batch+upload", _push, http, objects, scratch / uuid.uuid4().hex)
        done = timed("POST commit", http.commit, PROJECT, "load", own, latest, manifest,
                     uuid.uuid4().hex)
        if done:
            own, latest = done["ordinal"], manifest
            timed("PUT alias", http.put_alias, PROJECT, "load", f"c-{threading.get_ident()}", own)
            timed("GET versions", http.versions, PROJECT, "load", str(own))
            timed("GET find", lambda h: list(http.find(PROJECT, hash=h)), manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    times: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as tmp, postgres() as db, \
            ama_server(Path(tmp), db, workers=4) as (url, token):
        HttpTransport(url, token).put_class(PROJECT, "load")
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(url, token, until, Path(tmp),
                                                         times, errors, lock))
                   for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    rows = []
    print(f"{'route':28} {'count':>7} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for route, values in sorted(times.items()):
        q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        row = {"route": route, "count": len(values), "errors": errors.get(route, 0),
               "p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000}
        rows.append(row)
        print(f"{route:28} {row['count']:>7} {row['errors']:>6} {row['p50']:>8.1f} "
              f"{row['p95']:>8.1f} {row['p99']:>8.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
