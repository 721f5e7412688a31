"""The remote benchmark: object negotiation and commit throughput of ``ama-server serve``.

Run it with ``.venv/bin/python bench/remote.py`` (``--only negotiate`` or ``--only commits``
for one part). Every server runs as users run it: ``ama-server serve`` (gunicorn, 2 workers)
on 127.0.0.1, on SQLite and on a throwaway PostgreSQL cluster started here (as the test
fixture does), with ``file://`` storage; the clients are threads of this process using the
HTTP transport. Everything lives in one temp folder under /tmp, removed at the end. The
table goes to stdout and the same figures to ``bench/results/remote.json``.

Parts:
  negotiate  one ``POST objects/batch`` (upload) of 100,000 ids the project does not hold;
             best of N. Target: under 2 s.
  commits    16 clients at once, each creating an asset then committing versions of it
             (every commit is a compare-and-swap on its parent); commits per second over
             the whole run, p50 and p99 latency of one commit, and errors. Target: 0 errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
from ama.plumbing.transport import HttpTransport

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from tests.services.pgcluster import throwaway_cluster  # noqa: E402

RESULTS = HERE / "results" / "remote.json"
PARTS = ("negotiate", "commits")
PROJECT = "bench"
NEGOTIATE_TARGET_S = 2.0


@dataclass
class Row:
    measurement: str
    value: float
    unit: str
    target: str = "-"
    passed: bool | None = None


# -- services --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str]:
    """Yield the URL of a fresh database on a throwaway cluster (fsync off), the one the
    tests start; stop and remove it afterwards."""
    url = os.environ.get("AMA_TEST_DATABASE_URL")
    if url:
        yield url
        return
    import psycopg

    with throwaway_cluster(prefix="ama-bench-pg.") as server:
        with psycopg.connect(server.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ama_bench")
        yield server.rsplit("/", 1)[0] + "/ama_bench"


def _ama_server() -> list[str]:
    script = Path(sys.executable).parent / "ama-server"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ama_remote.cli"]


@contextmanager
def ama_server(root: Path, database_url: str, workers: int = 2) -> Iterator[tuple[str, str]]:
    """Yield (URL, admin token) of ``ama-server serve`` over ``database_url`` with a
    ``file://`` project named PROJECT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMA_")}
    env.update(AMA_SERVER_HOME=str(root / "home"), AMA_DATABASE_URL=database_url)
    storage = f"file://{root / 'storage'}"

    def admin(*args: str) -> str:
        done = subprocess.run([*_ama_server(), *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench: ama-server {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.strip()

    token = admin("init", "--admin", "admin", "--email", "admin@example.org",
                  "--storage", storage)
    admin("project", "add", PROJECT, "--storage", storage, "--no-check")
    admin("project", "grant", PROJECT, "admin", "admin")
    url = f"http://127.0.0.1:{_free_port()}"
    log = open(root / "server.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen([*_ama_server(), "serve", "--bind", url.removeprefix("http://"),
                                "--workers", str(workers), "--access-log", os.devnull],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/v1/auth/me", timeout=5)
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: ama-server did not start; see {root}/server.log"
                                     ) from None
                time.sleep(0.05)
        yield url, token
    finally:
        process.terminate()
        process.wait(30)
        log.close()


# -- parts -----------------------------------------------------------------------------------

def negotiate(url: str, token: str, ids: int, repeat: int) -> list[float]:
    """Return the wall seconds of ``repeat`` upload negotiations of ``ids`` new ids."""
    client = HttpTransport(url, token=token, timeout=(10.0, 600.0))
    times = []
    for _ in range(repeat):
        objects = [{"id": secrets.token_hex(32), "size": 1000} for _ in range(ids)]
        start = time.perf_counter()
        answer = client.batch(PROJECT, "upload", objects)
        times.append(time.perf_counter() - start)
        actions = sum(1 for item in answer["objects"] if "upload" in (item.get("actions") or {}))
        if actions != ids:
            raise SystemExit(f"bench: negotiation answered {actions} upload actions, not {ids}")
    return times


def _versions_objects(clients: int, commits: int) -> tuple[dict[str, bytes], list[list[str]]]:
    blob = b"benchmark data\n"
    tree = Tree.of([TreeEntry("blob", hash_bytes(blob), len(blob), "data.txt")]).serialize()
    objects = {hash_bytes(blob): blob, hash_bytes(tree): tree}
    pools: list[list[str]] = []
    run = uuid.uuid4().hex
    for c in range(clients):
        pool = []
        for n in range(commits):
            data = Manifest(tree=hash_bytes(tree), author=Author("Bench", "bench@example.org"),
                            created="2026-11-27T16:00:00Z",
                            message=f"{run} client {c} commit {n}").serialize()
            objects[hash_bytes(data)] = data
            pool.append(hash_bytes(data))
        pools.append(pool)
    return objects, pools


def _push(client: HttpTransport, objects: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    answer = client.batch(PROJECT, "upload",
                          [{"id": oid, "size": len(data)} for oid, data in objects.items()])
    for item in answer["objects"]:
        action = (item.get("actions") or {}).get("upload")
        if action:
            path = folder / item["id"]
            path.write_bytes(objects[item["id"]])
            client.upload(action, path)


def commits(url: str, token: str, clients: int, per_client: int, scratch: Path
            ) -> dict[str, Any]:
    """Run ``clients`` threads, each creating an asset and committing ``per_client - 1``
    versions of it; return throughput, latencies and errors."""
    admin = HttpTransport(url, token=token)
    admin.put_class(PROJECT, "runs")
    objects, pools = _versions_objects(clients, per_client)
    _push(admin, objects, scratch)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def work(pool: list[str]) -> None:
        client = HttpTransport(url, token=token)
        asset, parent = None, None
        mine = []
        barrier.wait()
        for manifest in pool:
            start = time.perf_counter()
            try:
                result = client.commit(PROJECT, "runs", asset, parent, manifest,
                                       uuid.uuid4().hex)
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                return
            mine.append(time.perf_counter() - start)
            asset, parent = result["ordinal"], manifest
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(pool,)) for pool in pools]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

    return {"commits": len(latencies), "seconds": wall,
            "per_second": len(latencies) / wall if wall else 0.0,
            "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
            "p99_ms": 1000 * pct(0.99), "errors": errors}


# -- the table -------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    head = ("measurement", "value", "target", "result")
    lines = [(r.measurement, f"{r.value:g} {r.unit}", r.target,
              {True: "PASS", False: "FAIL", None: "-"}[r.passed]) for r in rows]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(head), fmt(tuple("-" * w for w in widths)), *map(fmt, lines)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only this part (repeatable); default: all")
    parser.add_argument("--ids", type=int, default=100_000, help="ids in one negotiation")
    parser.add_argument("--repeat", type=int, default=3, help="negotiations (best is kept)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent committers")
    parser.add_argument("--commits", type=int, default=25, help="commits per client")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args(argv)
    parts = args.only or list(PARTS)
    rows: list[Row] = []
    details: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="ama-bench-remote-", dir="/tmp"))
    try:
        with postgres() as pg_url:
            databases = {"SQLite": f"sqlite:///{tmp / 'sqlite' / 'ama.db'}",
                         "PostgreSQL": pg_url}
            for name, url in databases.items():
                root = tmp / name.lower()
                root.mkdir(exist_ok=True)
                with ama_server(root, url, args.workers) as (server, token):
                    if "negotiate" in parts:
                        times = negotiate(server, token, args.ids, args.repeat)
                        best = min(times)
                        rows.append(Row(f"negotiate {args.ids:,} ids, one request, {name}",
                                        round(best, 3), "s", f"< {NEGOTIATE_TARGET_S:g} s",
                                        best < NEGOTIATE_TARGET_S))
                        details[f"negotiate {name}"] = {"seconds": times}
                    if "commits" in parts:
                        c = commits(server, token, args.clients, args.commits, root / "objects")
                        label = f"{name}, {args.workers} workers, {args.clients} clients"
                        rows += [
                            Row(f"commits per second, {label}", round(c["per_second"], 1),
                                "commits/s"),
                            Row(f"commit latency p50, {label}", round(c["p50_ms"], 1), "ms"),
                            Row(f"commit latency p99, {label}", round(c["p99_ms"], 1), "ms"),
                            Row(f"commit errors, {label}", len(c["errors"]), "", "0",
                                not c["errors"]),
                        ]
                        details[f"commits {name}"] = c
                        for e in c["errors"][:5]:
                            print(f"bench: {name}: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parts": parts, "rows": [asdict(r) for r in rows], "details": details,
        "all_passed": all(r.passed is not False for r in rows),
    }, indent=2) + "\n")
    print(f"results: {RESULTS}", file=sys.stderr)
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
