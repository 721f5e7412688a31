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


def server_rss(port: int) -> dict[int, int]:
    """Resident bytes of each process of the ``ama-server serve`` bound to ``port`` (the
    gunicorn master and its workers share its command line)."""
    found: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"serve" not in argv or f"127.0.0.1:{port}".encode() not in argv:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    found[int(proc.name)] = int(line.split()[1]) * 1024
        except OSError:  # the process ended meanwhile
            continue
    return found


def sample_memory(port: int, until: float, every: float,
                  samples: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        samples.append((time.monotonic() - start, sum(server_rss(port).values())))
        time.sleep(every)


def memory_report(samples: list[tuple[float, int]]) -> dict[str, float]:
    """First, last and highest total RSS, and the slope over the second half of the run
    (after warm-up), in MB per minute by least squares."""
    mb = [(t, rss / 1e6) for t, rss in samples]
    half = mb[len(mb) // 2:]
    slope = 0.0
    if len(half) > 1:
        slope = statistics.linear_regression([t for t, _ in half], [m for _, m in half]).slope
    return {"first_mb": mb[0][1], "last_mb": mb[-1][1], "max_mb": max(m for _, m in mb),
            "slope_mb_per_min": slope * 60, "samples": len(mb)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--soak", type=int, metavar="S",
                        help="run S seconds and sample the server's memory every 5 s")
    args = parser.parse_args()
    seconds = args.soak or args.seconds
    samples: list[tuple[float, int]] = []
    times: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as tmp, postgres() as db, \
            ama_server(Path(tmp), db, workers=4) as (url, token):
        HttpTransport(url, token).put_class(PROJECT, "load")
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(url, token, until, Path(tmp),
                                                         times, errors, lock))
                   for _ in range(args.clients)]
        if args.soak:
            port = int(url.rsplit(":", 1)[1])
            threads.append(threading.Thread(target=sample_memory,
                                            args=(port, until, 5.0, samples)))
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
    result: dict[str, object] = {"clients": args.clients, "seconds": seconds, "routes": rows}
    if samples:
        memory = memory_report(samples)
        result["memory"] = memory
        print(f"server RSS (master and 4 workers): first {memory['first_mb']:.1f} MB, last "
              f"{memory['last_mb']:.1f} MB, highest {memory['max_mb']:.1f} MB; slope over the "
              f"second half {memory['slope_mb_per_min']:+.2f} MB/min ({memory['samples']:.0f} "
              "samples)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
