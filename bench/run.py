"""The plumbing benchmark: ama's plumbing commands against the physical limit and against git.

Run it with ``make bench`` (or ``bench/run.py --only hash`` for one part). Everything it makes
lives in one temp folder under /tmp, removed at the end. Each ama command runs as a whole
subprocess, as a user runs it; its wall time is the best of N runs and its peak memory is the
child's max RSS as the kernel reports it to ``wait4``. The table goes to stdout and the same
figures to ``bench/results/plumbing.json``.

Parts:
  hash   ``ama hash-object FILE`` of a 1 GiB file in the page cache, against the ``blake3``
         package hashing the same file in-process with every thread; start-up and import time.
  many   ``ama hash-object -w --stdin-paths`` over 100,000 files of 1 KiB in 1,000 folders,
         against Python creating and renaming as many files, and ``git hash-object -w``.
  index  ``ama update-index --add --stdin -z`` of those files, then ``ama ls-files -m`` with
         nothing changed, against ``git add`` and ``git status`` of the same tree.
  lifecycle  the porcelain against DVC and git-lfs (``bench/lifecycle.py``, its own table and
         ``bench/results/lifecycle.json``); only when named, since it takes a quarter of an hour.
  remote the remote under gunicorn on SQLite and PostgreSQL: negotiating 100,000 ids and
         commits by 16 clients at once (``bench/remote.py``, its own table and
         ``bench/results/remote.json``); only when named, since it starts PostgreSQL.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolenv import tool_env, venv_bin

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "plumbing.json"
GIB = 1 << 30
MB = 1_000_000
RSS_LIMIT_MB = 300
PARTS = ("hash", "many", "index")
EXTRA_PARTS = ("lifecycle", "remote")  # run only when named with --only


@dataclass
class Row:
    """One line of the table: a measurement of ama, its reference and the target it must meet.

    ``ratio`` is ama's figure over the reference's, oriented so that bigger is better for ama
    when ``higher_is_better`` (throughput) and smaller is better otherwise (time, memory).
    """

    measurement: str
    ama: float | None
    reference: float | None
    unit: str
    reference_name: str = ""
    target: str = "-"
    passed: bool | None = None
    ratio: float | None = None
    notes: dict[str, object] = field(default_factory=dict)


@dataclass
class Run:
    """What one subprocess did: wall seconds, peak RSS in bytes, exit code, stdout."""

    seconds: float
    max_rss: int
    returncode: int
    stdout: bytes


TIME = "/usr/bin/time"
# Where a run's stdout is captured: outside the work trees, so no tool ever sees it.
SCRATCH = Path(tempfile.gettempdir())


def run(argv: Sequence[str], env: dict[str, str], cwd: Path, stdin: Path | None = None,
        out: Path | None = None) -> Run:
    """Run ``argv`` to completion with stdin/stdout on files (no pipe can stall it); return
    its wall time and its own peak RSS.

    The RSS comes from GNU time (``-f %M``) rather than from this process's ``wait4``: a child
    spawned straight from here inherits this process's high-water mark at exec (which the
    in-process hashing pushes past 1 GiB), so ``wait4`` would overstate it.
    """
    out = out if out is not None else SCRATCH / f"out-{os.getpid()}"
    rss_file = out.with_name(out.name + ".rss")
    prefix = [TIME, "-f", "%M", "-o", str(rss_file)] if os.access(TIME, os.X_OK) else []
    with open(stdin or os.devnull, "rb") as fin, open(out, "wb") as fout:
        start = time.perf_counter()
        proc = subprocess.Popen([*prefix, *argv], env=env, cwd=cwd, stdin=fin, stdout=fout)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    max_rss = usage.ru_maxrss * 1024
    if prefix:
        # GNU time prints "Command exited with non-zero status N" before the figure.
        max_rss = int(rss_file.read_text().split()[-1]) * 1024
        rss_file.unlink()
    data = out.read_bytes()
    out.unlink()
    return Run(seconds, max_rss, proc.returncode, data)


def checked(result: Run, what: str) -> Run:
    if result.returncode != 0:
        raise SystemExit(f"bench: {what} failed with exit code {result.returncode}")
    return result


def best(results: Sequence[Run]) -> Run:
    """The fastest run, carrying the highest peak RSS of all runs."""
    fastest = min(results, key=lambda r: r.seconds)
    return Run(fastest.seconds, max(r.max_rss for r in results), fastest.returncode,
               fastest.stdout)


# Nothing is deleted until the end: ext4 skips inodes freed in the last ~30 s when it
# allocates new ones, and checking each one made creating files after a 100,000-file delete
# 5 to 20 times slower (perf: recently_deleted in __ext4_new_inode), whatever tool ran next.


def drop_dirty() -> None:
    """Write back every dirty page first, so no timed run pays for data made before it."""
    os.sync()


class Bench:
    def __init__(self, tmp: Path, repeat: int, files: int, folders: int, big: int) -> None:
        global SCRATCH
        self.tmp = tmp
        SCRATCH = tmp
        self.repeat = repeat
        self.files = files
        self.folders = folders
        self.big = big
        self.rows: list[Row] = []
        self.ama = os.path.abspath(shutil.which("ama") or venv_bin() / "ama")
        self.git = shutil.which("git") or "git"
        self.env = tool_env(tmp)
        (tmp / "gitconfig").write_text("[core]\n\tuntrackedCache = false\n")
        self._homes = 0
        self._tree: Path | None = None
        self._paths: list[str] = []

    # -- helpers ---------------------------------------------------------------------------

    def ama_env(self, home: Path) -> dict[str, str]:
        return {**self.env, "AMA_HOME": str(home)}

    def fresh_home(self) -> Path:
        self._homes += 1
        return self.tmp / f"home{self._homes}"

    def memory_row(self, command: str, result: Run) -> None:
        mb = result.max_rss / MB
        self.rows.append(Row(f"peak RSS: {command}", round(mb, 1), RSS_LIMIT_MB, "MB",
                             "limit", f"< {RSS_LIMIT_MB} MB", mb < RSS_LIMIT_MB,
                             round(mb / RSS_LIMIT_MB, 3)))

    def timed(self, fn: Callable[[], float], n: int | None = None) -> float:
        return min(fn() for _ in range(n or self.repeat))

    # -- hash: one big file ----------------------------------------------------------------

    def part_hash(self) -> None:
        from blake3 import blake3

        big = self.tmp / "big.bin"
        block = os.urandom(min(64 << 20, self.big))
        with open(big, "wb") as f:
            left = self.big  # every byte asked for, even below one block or past whole ones
            while left:
                part = block[:min(left, len(block))]
                f.write(part[:-1] + os.urandom(1))
                left -= len(part)
        size = big.stat().st_size
        drop_dirty()

        def in_process() -> float:
            start = time.perf_counter()
            h = blake3(max_threads=blake3.AUTO)
            h.update_mmap(str(big))
            self._big_id = h.hexdigest()
            return time.perf_counter() - start

        in_process()  # pulls the file into the page cache
        ref = self.timed(in_process, self.repeat + 2)
        env = self.ama_env(self.fresh_home())
        runs = [checked(run([self.ama, "hash-object", str(big)], env, self.tmp), "hash-object")
                for _ in range(self.repeat + 2)]
        got = best(runs)
        if got.stdout.decode().strip() != self._big_id:
            raise SystemExit("bench: ama hash-object printed another id than blake3")
        ama_rate, ref_rate = size / got.seconds / MB, size / ref / MB
        ratio = ama_rate / ref_rate
        self.rows.append(Row(f"hash-object {size >> 20} MiB file (page cache)", round(ama_rate),
                             round(ref_rate), "MB/s", "blake3 in-process, all threads",
                             ">= 0.50 x", ratio >= 0.5, round(ratio, 3),
                             {"ama_seconds": got.seconds, "reference_seconds": ref}))
        self.memory_row(f"hash-object {size >> 20} MiB file", got)

        # Start-up: the whole command on a tiny file, against a bare interpreter.
        tiny = self.tmp / "tiny.txt"
        tiny.write_bytes(b"hello\n")
        startup = best([checked(run([self.ama, "hash-object", str(tiny)], env, self.tmp),
                                "hash-object") for _ in range(self.repeat + 4)])
        bare = best([run([sys.executable, "-c", "pass"], env, self.tmp)
                     for _ in range(self.repeat + 4)])
        self.rows.append(Row("hash-object start-up (tiny file)", round(startup.seconds * 1000, 1),
                             round(bare.seconds * 1000, 1), "ms", "python -c pass",
                             ratio=round(startup.seconds / bare.seconds, 2)))
        imports = self.import_time(env, tiny)
        self.rows.append(Row("hash-object imports (-X importtime, total)", round(imports, 1),
                             None, "ms", notes={"top": self._top_imports}))

    def import_time(self, env: dict[str, str], tiny: Path) -> float:
        """Sum of top-level cumulative import times of ``ama hash-object`` (ms)."""
        proc = subprocess.run([sys.executable, "-X", "importtime", self.ama, "hash-object",
                               str(tiny)], env=env, cwd=self.tmp, capture_output=True, text=True)
        total = 0
        rows: list[tuple[int, str]] = []
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not m:
                continue
            cumulative, depth, name = int(m.group(2)), len(m.group(3)), m.group(4)
            if depth == 1:
                total += cumulative
                rows.append((cumulative, name))
        rows.sort(reverse=True)
        self._top_imports = {name: us / 1000 for us, name in rows[:8]}
        return total / 1000

    # -- many small files ------------------------------------------------------------------

    def tree(self) -> tuple[Path, list[str]]:
        """The work tree of small files (made once): ``d0000/f00000.bin`` …, 1 KiB each."""
        if self._tree is None:
            tree = self.tmp / "tree"
            per = self.files // self.folders
            paths: list[str] = []
            n = 0
            for d in range(self.folders):
                folder = tree / f"d{d:04d}"
                folder.mkdir(parents=True)
                for _ in range(per):
                    name = f"d{d:04d}/f{n:06d}.bin"
                    # Distinct bytes per file: every file is its own object.
                    with open(tree / name, "wb") as f:
                        f.write(n.to_bytes(8, "little") + os.urandom(1016))
                    paths.append(name)
                    n += 1
            drop_dirty()
            self._tree, self._paths = tree, paths
        return self._tree, self._paths

    def create_rename_limit(self, count: int) -> float:
        """Seconds for Python to create ``count`` files of 1 KiB as temp files in 256 folders,
        rename each to its final name, and sync the filesystem once (ama's durability)."""
        self._limits = getattr(self, "_limits", 0) + 1
        root = self.tmp / f"limit{self._limits}"
        folders = [str(root / f"{i:02x}") for i in range(256)]
        for folder in folders:
            os.makedirs(folder)
        payload = os.urandom(1024)
        drop_dirty()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        start = time.perf_counter()
        for i in range(count):
            folder = folders[i & 255]
            temp = f"{folder}/.tmp-{i}"
            fd = os.open(temp, flags, 0o444)
            os.write(fd, payload)
            os.close(fd)
            os.rename(temp, f"{folder}/{i:062x}")
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.sync()
        finally:
            os.close(fd)
        return time.perf_counter() - start

    def part_many(self) -> None:
        tree, paths = self.tree()
        count = len(paths)
        listing = self.tmp / "paths.txt"
        listing.write_text("".join(p + "\n" for p in paths))

        limit = self.timed(lambda: self.create_rename_limit(count))

        ama_runs = []
        for _ in range(self.repeat):
            home = self.fresh_home()
            drop_dirty()
            ama_runs.append(checked(run([self.ama, "hash-object", "-w", "--stdin-paths"],
                                        self.ama_env(home), tree, stdin=listing),
                                    "hash-object -w --stdin-paths"))
            ids = ama_runs[-1].stdout.split()
            if len(ids) != count:
                raise SystemExit(f"bench: hash-object -w printed {len(ids)} ids, not {count}")
        got = best(ama_runs)

        git_times = []
        for i in range(self.repeat):
            repo = self.tmp / f"git-objects{i}"
            subprocess.run([self.git, "init", "-q", "--bare", str(repo)], env=self.env,
                           check=True)
            drop_dirty()
            r = checked(run([self.git, "--git-dir", str(repo), "hash-object", "-w",
                             "--stdin-paths"], self.env, tree, stdin=listing),
                        "git hash-object")
            git_times.append(r.seconds)
        git_seconds = min(git_times)

        rate, limit_rate, git_rate = count / got.seconds, count / limit, count / git_seconds
        self.rows.append(Row(f"hash-object -w --stdin-paths, {count} x 1 KiB", round(rate),
                             round(limit_rate), "files/s",
                             "python create+rename (+1 sync)", ">= 20000 files/s",
                             rate >= 20000, round(rate / limit_rate, 3),
                             {"ama_seconds": got.seconds, "limit_seconds": limit}))
        self.rows.append(Row("  same, against git hash-object -w --stdin-paths", round(rate),
                             round(git_rate), "files/s", "git", ratio=round(rate / git_rate, 3),
                             notes={"git_seconds": git_seconds}))
        self.memory_row("hash-object -w --stdin-paths", got)

    # -- the index -------------------------------------------------------------------------

    def part_index(self) -> None:
        tree, paths = self.tree()
        count = len(paths)
        listing = self.tmp / "paths.z"
        listing.write_bytes(b"".join(p.encode() + b"\0" for p in paths))

        # ama: a fresh store and index each time, so every run hashes and stores every file.
        add_runs = []
        for _ in range(self.repeat):
            home = self.fresh_home()
            shutil.rmtree(tree / ".ama", ignore_errors=True)
            (tree / ".ama").mkdir()
            drop_dirty()
            add_runs.append(checked(run([self.ama, "update-index", "--add", "--stdin", "-z"],
                                        self.ama_env(home), tree, stdin=listing),
                                    "update-index --add"))
        add = best(add_runs)
        env = self.ama_env(self.fresh_home())
        staged = checked(run([self.ama, "ls-files"], env, tree), "ls-files")
        if len(staged.stdout.split()) != count:
            raise SystemExit("bench: ls-files does not list every staged file")

        git_add_times = []
        for i in range(self.repeat):
            git_dir = self.tmp / f"git-index{i}"
            git = [self.git, "--git-dir", str(git_dir), "--work-tree", str(tree)]
            subprocess.run([self.git, "init", "-q", "--bare", str(git_dir)], env=self.env,
                           check=True)
            (git_dir / "info").mkdir(exist_ok=True)
            (git_dir / "info" / "exclude").write_text(".ama/\n")
            drop_dirty()
            git_add_times.append(checked(run([*git, "add", "."], self.env, tree),
                                         "git add").seconds)
        git_add = min(git_add_times)
        # Committed, so a clean status has nothing to list, as ama's index after staging.
        subprocess.run([*git, "commit", "-q", "-m", "bench"], env=self.env, cwd=tree,
                       check=True)

        # Nothing changed since staging: both tools only stat.
        checked(run([*git, "status", "--porcelain"], self.env, tree), "git status")
        status = best([checked(run([*git, "status", "--porcelain"], self.env, tree),
                               "git status") for _ in range(self.repeat + 2)])
        if status.stdout.strip():
            raise SystemExit(f"bench: git status is not clean: {status.stdout[:200]!r}")
        lsm = best([checked(run([self.ama, "ls-files", "-m"], env, tree), "ls-files -m")
                    for _ in range(self.repeat + 2)])
        if lsm.stdout.strip():
            raise SystemExit(f"bench: ls-files -m lists files: {lsm.stdout[:200]!r}")

        self.rows.append(Row(f"update-index --add --stdin -z, {count} files",
                             round(add.seconds, 3), round(git_add, 3), "s", "git add .",
                             ratio=round(add.seconds / git_add, 3),
                             notes={"files_per_second": count / add.seconds}))
        self.memory_row("update-index --add", add)
        ratio = lsm.seconds / status.seconds
        self.rows.append(Row(f"ls-files -m, {count} files, nothing changed",
                             round(lsm.seconds, 3), round(status.seconds, 3), "s",
                             "git status --porcelain", "<= 3.00 x", ratio <= 3,
                             round(ratio, 3)))
        self.memory_row("ls-files -m", lsm)


def table(rows: list[Row]) -> str:
    head = ("measurement", "ama", "reference", "ratio", "target", "result")
    lines = []
    for r in rows:
        ref = "-" if r.reference is None else f"{r.reference:g} {r.unit}"
        if r.reference_name:
            ref += f" ({r.reference_name})"
        ama = "-" if r.ama is None else f"{r.ama:g} {r.unit}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        result = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
        lines.append((r.measurement, ama, ref, ratio, r.target, result))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def _remote_bench() -> Any:
    """bench/remote.py, loaded from its file: ``import remote`` could find the remote's
    own source folder instead."""
    spec = importlib.util.spec_from_file_location("bench_remote", HERE / "remote.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=PARTS + EXTRA_PARTS,
                        help="run only this part (repeatable); default: all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--files", type=int, default=100_000, help="number of small files")
    parser.add_argument("--folders", type=int, default=1_000, help="folders they are spread in")
    parser.add_argument("--big-mib", type=_positive, default=1024,
                        help="size of the big file (at least 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    parts = args.only or list(PARTS)
    status = 0
    if "lifecycle" in parts:
        import lifecycle

        status = lifecycle.main(["--files", str(args.files), "--folders", str(args.folders)])
        parts = [p for p in parts if p != "lifecycle"]
        if not parts:
            return status
    if "remote" in parts:
        status = _remote_bench().main(["--repeat", str(args.repeat)]) or status
        parts = [p for p in parts if p != "remote"]
        if not parts:
            return status

    tmp = Path(tempfile.mkdtemp(prefix="ama-bench-", dir="/tmp"))
    bench = Bench(tmp, args.repeat, args.files, args.folders, args.big_mib << 20)
    try:
        for part in PARTS:
            if part in parts:
                getattr(bench, f"part_{part}")()
        # Shown before the clean-up: removing 500,000 files can take minutes.
        print(table(bench.rows), flush=True)
        save(bench.rows, parts, args)
    finally:
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            print(f"bench: removing {tmp}", file=sys.stderr)
            shutil.rmtree(tmp, ignore_errors=True)
    return status or (0 if all(r.passed is not False for r in bench.rows) else 1)


def save(rows: list[Row], parts: list[str], args: argparse.Namespace) -> None:
    """Write the figures to bench/results/plumbing.json (a partial run keeps the others)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    figures = {r.measurement: asdict(r) for r in rows}
    if args.only and previous.get("rows"):
        figures = {**previous["rows"], **figures}
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parts": parts, "repeat": args.repeat,
        "rows": figures,
        "all_passed": all(r["passed"] is not False for r in figures.values()),
    }, indent=2) + "\n")
    print(f"results: {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
