"""The lifecycle benchmark: ama's porcelain against DVC and git-lfs on the same data, same run.

Run it with ``bench/lifecycle.py`` (or ``bench/run.py --only lifecycle``); ``--quick`` shrinks
the data for a smoke run. Everything it makes lives in one temp folder under /tmp, removed at
the end: the data, every work tree, store, cache and remote, and the benchmark's own tools
(DVC in a virtualenv of its own, made there with ``pip install dvc``; git-lfs from Debian,
installed with apt-get if it is missing). Each command runs as a whole subprocess, as a user
runs it; its wall time is measured once (each step changes what the next one sees) and its
peak memory is the child's max RSS (GNU time). The table goes to stdout and the same figures
to ``bench/results/lifecycle.json``.

Data sets: 100,000 files of 1 KiB in 1,000 folders ("small"); 8 files of 256 MiB ("big");
then 1% of the small files rewritten (new bytes, same size, replaced by rename as an editor
does). Remotes are local folders: ama's embedded ``file://`` remote, ``dvc remote add -d`` a
folder, and for git-lfs a bare repository reached by ``file://`` (git-lfs's standalone file
transfer). Link types are matched: ``add`` is measured with both tools copying into their
store (ama ``link.strategy auto`` falls back to copy on ext4, DVC's default cache.type
``reflink,copy`` does the same) and with both hard-linking (ama ``hardlink``, DVC
``cache.type hardlink``); clone, checkout and switch use hard links on both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from toolenv import tool_env, venv_bin

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Run, drop_dirty  # noqa: E402
from run import run as run_child  # noqa: E402

RESULTS = HERE / "results" / "lifecycle.json"
MB = 1_000_000
RSS_LIMIT_MB = 500


@dataclass
class Row:
    """One line of the table. Times in seconds; ``ratio`` is the reference over ama for a
    "N x faster" target (bigger is better), ama over the reference for a "within"/"under"
    target (smaller is better), as the target column says."""

    measurement: str
    ama: float | None
    dvc: float | None = None
    git: float | None = None
    ratio: float | None = None
    target: str = "-"
    passed: bool | None = None
    unit: str = "s"
    note: str = ""


class Skip(Exception):
    """A tool or command that is not there: the rows that need it say so."""


class Lifecycle:
    def __init__(self, tmp: Path, files: int, folders: int, big_files: int, big_size: int,
                 tools: Sequence[str], dvc: str | None) -> None:
        self.tmp = tmp
        self.files, self.folders = files, folders
        self.big_files, self.big_size = big_files, big_size
        self.tools = set(tools)
        self.rows: list[Row] = []
        self.figures: dict[str, dict[str, float | None]] = {}
        self.rss: dict[str, float] = {}
        bin_dir = venv_bin()
        self.ama = os.path.abspath(shutil.which("ama", path=str(bin_dir))
                                   or shutil.which("ama") or bin_dir / "ama")
        self.git = shutil.which("git") or "git"
        self.env = tool_env(tmp, AMA_AUTHOR_NAME="bench", AMA_AUTHOR_EMAIL="bench@example.com",
                            DVC_NO_ANALYTICS="1", GIT_TERMINAL_PROMPT="0")
        (tmp / "gitconfig").write_text(
            "[core]\n\tuntrackedCache = false\n[init]\n\tdefaultBranch = main\n"
            "[advice]\n\tdetachedHead = false\n"
            # No background gc: packing 100,000 loose objects under git-lfs's pre-push scan
            # made the push fail with "missing object".
            "[gc]\n\tauto = 0\n")
        self.dvc = dvc
        self.small = tmp / "data" / "small"
        self.big = tmp / "data" / "big"
        self.changed: list[str] = []
        # tool -> (status command, tree, environment), for status_round
        self.status_trees: dict[str, tuple[list[str], Path, dict[str, str]]] = {}
        self.log = tmp / "log"
        self.log.mkdir()
        self._n = 0

    # -- running ---------------------------------------------------------------------------

    def run(self, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None,
            what: str | None = None, check: bool = True) -> Run:
        """Run one command after flushing dirty pages; return its time, RSS and stdout."""
        drop_dirty()
        self._n += 1
        out = self.log / f"out-{self._n}"
        result = run_child(list(argv), env or self.env, cwd, out=out)
        if check and result.returncode != 0:
            raise SystemExit(f"bench: {what or argv[0]} failed with exit code "
                             f"{result.returncode} in {cwd}: {' '.join(map(str, argv))}\n"
                             f"{result.stdout[-2000:].decode(errors='replace')}")
        return result

    def quiet(self, argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
        """Run an untimed set-up command; fail loudly with its output."""
        proc = subprocess.run(list(argv), cwd=cwd, env=env or self.env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(map(str, argv))} failed in {cwd}:\n"
                             f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return proc.stdout

    def record(self, key: str, tool: str, result: Run | float | None) -> None:
        """Keep a figure (seconds) and, for ama, its peak RSS."""
        seconds = result.seconds if isinstance(result, Run) else result
        self.figures.setdefault(key, {})[tool] = seconds
        if isinstance(result, Run):
            self.rss[f"{tool}: {key}"] = result.max_rss / MB
        print(f"bench: {tool:4s} {key}: "
              f"{'-' if seconds is None else f'{seconds:.3f} s'}", file=sys.stderr, flush=True)

    # -- tools -----------------------------------------------------------------------------

    def setup_tools(self) -> None:
        if "dvc" in self.tools and self.dvc is None:
            venv = self.tmp / "tools" / "dvc"
            print("bench: installing dvc into its own virtualenv (pip install dvc)",
                  file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "dvc"],
                                 env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                                 capture_output=True, text=True)
            if pip.returncode != 0:
                raise SystemExit(f"bench: pip install dvc failed:\n{pip.stderr[-3000:]}")
            self.dvc = str(venv / "bin" / "dvc")
        if "lfs" in self.tools and not shutil.which("git-lfs"):
            print("bench: installing git-lfs (apt-get install -y git-lfs)", file=sys.stderr)
            apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            if subprocess.run(["apt-get", "install", "-y", "-q", "git-lfs"], env=apt,
                              capture_output=True).returncode != 0:
                subprocess.run(["apt-get", "update", "-q"], env=apt, capture_output=True)
                subprocess.run(["apt-get", "install", "-y", "-q", "git-lfs"], env=apt,
                               check=True, capture_output=True)
        if "lfs" in self.tools:
            # Into the benchmark's own global config, so clones smudge LFS files too.
            self.quiet([self.git, "lfs", "install", "--skip-repo"], self.tmp)
        self.versions = {"ama": self.quiet([self.ama, "--version"], self.tmp).strip(),
                         "git": self.quiet([self.git, "--version"], self.tmp).strip()}
        if self.dvc:
            self.versions["dvc"] = self.quiet([self.dvc, "--version"], self.tmp).strip()
        if "lfs" in self.tools:
            self.versions["git-lfs"] = self.quiet([self.git, "lfs", "version"],
                                                  self.tmp).strip()

    def ama_has(self, command: str) -> bool:
        return subprocess.run([self.ama, command, "--help"], env=self.env,
                              capture_output=True).returncode == 0

    # -- data ------------------------------------------------------------------------------

    def make_data(self) -> None:
        per = self.files // self.folders
        n = 0
        for d in range(self.folders):
            folder = self.small / f"d{d:04d}"
            folder.mkdir(parents=True)
            for _ in range(per):
                with open(folder / f"f{n:06d}.bin", "wb") as f:
                    f.write(n.to_bytes(8, "little") + os.urandom(1016))
                n += 1
        self.big.mkdir(parents=True)
        block = os.urandom(64 << 20)
        for i in range(self.big_files):
            with open(self.big / f"part{i}.bin", "wb") as f:
                left = self.big_size
                while left:
                    chunk = block[:min(left, len(block))]
                    f.write(i.to_bytes(8, "little") + os.urandom(8) + chunk[16:])
                    left -= len(chunk)
        step = 100  # 1%: every hundredth file
        self.changed = [f"d{k // per:04d}/f{k:06d}.bin" for k in range(0, n, step)]
        drop_dirty()

    def copy_data(self, which: Path, dest: Path) -> Path:
        """A private copy of a data set for one tool (each changes its tree its own way)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(which), str(dest)], check=True)
        return dest

    def change(self, tree: Path) -> None:
        """Rewrite 1% of the small files: new bytes, same size, replaced by rename."""
        for rel in self.changed:
            path = tree / rel
            temp = path.with_name(path.name + ".new")
            temp.write_bytes(b"changed!" + os.urandom(1016))
            os.replace(temp, path)

    def check_copy(self, tree: Path, what: str) -> None:
        """Refuse a figure for a clone that did not write every file with its bytes."""
        got = sorted(p for p in tree.rglob("*.bin"))
        if len(got) != self.files or any(p.stat().st_size != 1024 for p in got[:50]):
            raise SystemExit(f"bench: {what} did not write the {self.files} files of 1 KiB "
                             f"(found {len(got)} in {tree})")

    # -- ama -------------------------------------------------------------------------------

    def ama_env(self, home: Path) -> dict[str, str]:
        return {**self.env, "AMA_HOME": str(home)}

    def ama_home(self, name: str, strategy: str) -> dict[str, str]:
        env = self.ama_env(self.tmp / "ama" / name)
        self.quiet([self.ama, "config", "set", "link.strategy", strategy], self.tmp, env)
        return env

    def ama_add_only(self, data: Path, label: str, strategy: str) -> None:
        env = self.ama_home(f"add-{label}-{strategy}", strategy)
        tree = self.copy_data(data, self.tmp / "ama" / f"tree-{label}-{strategy}")
        self.quiet([self.ama, "class", "init", "bench"], tree, env)
        self.quiet([self.ama, "init", "bench"], tree, env)
        self.record(f"add {label} ({self.link_name(strategy)})", "ama",
                    self.run([self.ama, "add", "-q", "."], tree, env))

    @staticmethod
    def link_name(strategy: str) -> str:
        return "hardlink" if strategy == "hardlink" else "copy"

    def ama_flow(self) -> None:
        """add, status, upload, status, change, status, add, upload, clone, switch."""
        self.ama_add_only(self.big, "big", "auto")
        self.ama_add_only(self.big, "big", "hardlink")
        self.ama_add_only(self.small, "small", "auto")
        remote = self.tmp / "ama" / "remote"
        env = self.ama_home("main", "hardlink")
        tree = self.copy_data(self.small, self.tmp / "ama" / "tree")
        remote_env = env
        if self.ama_has("remote"):
            # A remote outside AMA_HOME, so a second, empty store can clone from it.
            remote.mkdir(parents=True)
            self.quiet([self.ama, "remote", "add", "bench", f"file://{remote}"], tree, env)
            self.quiet([self.ama, "remote", "default", "bench"], tree, env)
        self.quiet([self.ama, "class", "init", "bench"], tree, env)
        self.quiet([self.ama, "init", "bench"], tree, env)
        self.record("add small (hardlink)", "ama",
                    self.run([self.ama, "add", "-q", "."], tree, env))
        self.record("status, staged, nothing changed", "ama",
                    self.run([self.ama, "status"], tree, env))
        if not self.ama_has("upload"):
            print("bench: ama upload is not there yet: upload, clone and switch are skipped",
                  file=sys.stderr)
            self.change(tree)
            self.record("status, 1% changed", "ama", self.run([self.ama, "status"], tree, env))
            return
        up = self.run([self.ama, "upload", "-q", "-m", "first"], tree, env)
        self.record("upload first", "ama", up)
        name = self.quiet([self.ama, "status", "--json"], tree, env)
        name = json.loads(name)["asset"]
        self.record("status, nothing changed", "ama", self.run([self.ama, "status"], tree, env))
        self.change(tree)
        self.record("status, 1% changed", "ama", self.run([self.ama, "status"], tree, env))
        self.record("add 1% changed", "ama", self.run([self.ama, "add", "-q", "."], tree, env))
        self.record("upload after 1% change", "ama",
                    self.run([self.ama, "upload", "-q", "-m", "second"], tree, env))
        self.status_trees["ama"] = ([self.ama, "status"], tree, env)
        if not self.ama_has("clone"):
            return
        cold = self.ama_home("clone", "hardlink")
        if self.ama_has("remote"):
            self.quiet([self.ama, "remote", "add", "bench", f"file://{remote}"], self.tmp, cold)
            self.quiet([self.ama, "remote", "default", "bench"], self.tmp, cold)
        else:
            cold = remote_env  # same store: only the warm clone can be measured
        where = self.tmp / "ama" / "clones"
        where.mkdir()
        if cold is not remote_env:
            self.record("clone, empty store", "ama",
                        self.run([self.ama, "clone", "-q", name, "-d", str(where / "cold")], where,
                                 cold))
        self.record("clone, warm store", "ama",
                    self.run([self.ama, "clone", "-q", name, "-d", str(where / "warm")], where,
                             cold))
        self.check_copy(where / "warm", "ama clone")
        if self.ama_has("switch"):
            target = where / "warm"
            back = self.run([self.ama, "switch", "-q", "--version", "0.0.0"], target, cold)
            forth = self.run([self.ama, "switch", "-q", "--version", "0.0.1"], target, cold)
            self.record("switch 1% of files", "ama", min((back, forth),
                                                         key=lambda r: r.seconds))

    # -- dvc -------------------------------------------------------------------------------

    def dvc_repo(self, data: Path, name: str, cache_type: str | None) -> Path:
        repo = self.tmp / "dvc" / name
        repo.mkdir(parents=True)
        self.quiet([self.dvc, "init", "--no-scm", "-q"], repo)
        self.quiet([self.dvc, "config", "core.analytics", "false"], repo)
        if cache_type:
            self.quiet([self.dvc, "config", "cache.type", cache_type], repo)
        self.copy_data(data, repo / "data")
        return repo

    def dvc_flow(self) -> None:
        assert self.dvc
        dvc = self.dvc
        for label, data in (("big", self.big), ("small", self.small)):
            for cache_type in (None, "hardlink"):
                if label == "small" and cache_type is None:
                    continue  # measured below, in the repository the flow goes on with
                repo = self.dvc_repo(data, f"add-{label}-{cache_type or 'copy'}", cache_type)
                self.record(f"add {label} ({cache_type or 'copy'})", "dvc",
                            self.run([dvc, "add", "-q", "data"], repo))
        remote = self.tmp / "dvc" / "remote"
        remote.mkdir(parents=True)
        repo = self.dvc_repo(self.small, "main", None)
        self.quiet([dvc, "remote", "add", "-d", "store", str(remote)], repo)
        self.record("add small (copy)", "dvc", self.run([dvc, "add", "-q", "data"], repo))
        self.record("status, staged, nothing changed", "dvc", self.run([dvc, "status"], repo))
        self.record("upload first", "dvc", self.run([dvc, "push", "-q"], repo))
        self.record("status, nothing changed", "dvc", self.run([dvc, "status"], repo))
        first = (repo / "data.dvc").read_bytes()
        self.change(repo / "data")
        self.record("status, 1% changed", "dvc", self.run([dvc, "status"], repo))
        self.record("add 1% changed", "dvc", self.run([dvc, "add", "-q", "data"], repo))
        self.record("upload after 1% change", "dvc", self.run([dvc, "push", "-q"], repo))
        self.status_trees["dvc"] = ([dvc, "status"], repo, self.env)
        second = (repo / "data.dvc").read_bytes()
        # A second workspace with an empty cache: the project's files without the data.
        clone = self.tmp / "dvc" / "clone"
        clone.mkdir()
        shutil.copytree(repo / ".dvc", clone / ".dvc",
                        ignore=shutil.ignore_patterns("cache", "tmp"))
        self.quiet([dvc, "config", "cache.type", "hardlink"], clone)
        (clone / "data.dvc").write_bytes(second)
        self.record("clone, empty store", "dvc", self.run([dvc, "pull", "-q"], clone))
        self.check_copy(clone / "data", "dvc pull")
        shutil.move(clone / "data", self.tmp / "dvc" / "pulled-data")  # deleted at the end
        self.record("clone, warm store", "dvc", self.run([dvc, "checkout", "-q"], clone))
        # Switching fetches what the cache lacks, as ama switch does: dvc pull.
        (clone / "data.dvc").write_bytes(first)
        back = self.run([dvc, "pull", "-q"], clone)
        (clone / "data.dvc").write_bytes(second)
        forth = self.run([dvc, "pull", "-q"], clone)
        self.record("switch 1% of files", "dvc", min((back, forth), key=lambda r: r.seconds))

    # -- git and git-lfs -------------------------------------------------------------------

    def lfs_repo(self, data: Path, name: str) -> Path:
        repo = self.tmp / "lfs" / name
        repo.mkdir(parents=True)
        self.quiet([self.git, "init", "-q"], repo)
        self.quiet([self.git, "lfs", "track", "*.bin"], repo)
        self.quiet([self.git, "add", ".gitattributes"], repo)
        self.copy_data(data, repo / "data")
        return repo

    def lfs_flow(self) -> None:
        git = self.git
        big = self.lfs_repo(self.big, "add-big")
        self.record("add big (copy)", "git", self.run([git, "add", "."], big))
        bare = self.tmp / "lfs" / "remote.git"
        self.quiet([git, "init", "-q", "--bare", str(bare)], self.tmp)
        repo = self.lfs_repo(self.small, "main")
        self.quiet([git, "remote", "add", "origin", f"file://{bare}"], repo)
        self.record("add small (copy)", "git", self.run([git, "add", "."], repo))
        self.quiet([git, "commit", "-q", "-m", "first"], repo)
        self.run([git, "status", "--porcelain"], repo)  # refreshes the index's stat data
        self.record("status, nothing changed", "git",
                    self.run([git, "status", "--porcelain"], repo))
        self.record("upload first", "git",
                    self.run([git, "push", "-q", "origin", "main"], repo))
        self.change(repo / "data")
        self.record("status, 1% changed", "git",
                    self.run([git, "status", "--porcelain"], repo))
        self.record("add 1% changed", "git", self.run([git, "add", "."], repo))
        self.quiet([git, "commit", "-q", "-m", "second"], repo)
        self.status_trees["git"] = ([git, "status", "--porcelain"], repo, self.env)
        self.record("upload after 1% change", "git",
                    self.run([git, "push", "-q", "origin", "main"], repo))
        clone = self.tmp / "lfs" / "clone"
        self.record("clone, empty store", "git",
                    self.run([git, "clone", "-q", f"file://{bare}", str(clone)], self.tmp))
        self.check_copy(clone / "data", "git lfs clone")
        back = self.run([git, "checkout", "-q", "HEAD~1"], clone)
        forth = self.run([git, "checkout", "-q", "main"], clone)
        self.record("switch 1% of files", "git", min((back, forth), key=lambda r: r.seconds))

    def status_round(self, rounds: int = 3) -> None:
        """Measure status again for every tool back to back, best of ``rounds`` each, so
        that the three figures share one moment's load: first with nothing changed (each
        tree as its second version left it), then with 1% of the files rewritten again."""
        trees = self.status_trees
        data = {"ama": "", "dvc": "data", "git": "data"}
        for key in ("status, nothing changed", "status, 1% changed"):
            if "1%" in key:
                for tool, (_argv, tree, _env) in trees.items():
                    self.change(tree / data[tool])
            for argv, tree, env in trees.values():
                self.run(argv, tree, env)  # refreshes whatever stat cache a tool keeps
            best: dict[str, Run] = {}
            for _ in range(rounds):
                for tool, (argv, tree, env) in trees.items():
                    got = self.run(argv, tree, env)
                    if tool not in best or got.seconds < best[tool].seconds:
                        best[tool] = got
            for tool, got in best.items():
                self.record(key, tool, got)

    # -- the table -------------------------------------------------------------------------

    def make_rows(self) -> None:
        f = self.figures

        def get(key: str, tool: str) -> float | None:
            return f.get(key, {}).get(tool)

        def faster(key: str, times: float, note: str = "") -> None:
            ama, dvc = get(key, "ama"), get(key, "dvc")
            ratio = dvc / ama if ama and dvc else None
            self.rows.append(Row(key, ama, dvc, get(key, "git"),
                                 None if ratio is None else round(ratio, 2),
                                 f">= {times:g}x faster than dvc",
                                 None if ratio is None else ratio >= times, note=note))

        small, big = f"{self.files} x 1 KiB", f"{self.big_files} x {self.big_size >> 20} MiB"
        faster("add small (copy)", 3, small)
        faster("add small (hardlink)", 3, small)
        faster("add big (copy)", 2, big)
        faster("add big (hardlink)", 2, big)
        for key in ("status, nothing changed", "status, 1% changed"):
            faster(key, 3, small)
            ama, git = get(key, "ama"), get(key, "git")
            ratio = ama / git if ama and git else None
            self.rows.append(Row(f"{key} (against git status)", ama, None, git,
                                 None if ratio is None else round(ratio, 2),
                                 "<= 3x git status", None if ratio is None else ratio <= 3))
        for key in ("status, staged, nothing changed", "add 1% changed"):
            ama, dvc = get(key, "ama"), get(key, "dvc")
            self.rows.append(Row(key, ama, dvc, get(key, "git"),
                                 round(dvc / ama, 2) if ama and dvc else None, "(reference)"))
        faster("upload first", 2, "git-lfs: git push with LFS objects")
        faster("upload after 1% change", 2)
        faster("clone, empty store", 2, "hardlink; dvc pull, git clone with LFS")
        faster("clone, warm store", 2, "hardlink; dvc checkout")
        key = "switch 1% of files"
        ama, clone = get(key, "ama"), get("clone, empty store", "ama")
        ratio = ama / clone if ama and clone else None
        self.rows.append(Row(key, ama, get(key, "dvc"), get(key, "git"),
                             None if ratio is None else round(ratio, 3),
                             "< 0.10 x ama's clone", None if ratio is None else ratio < 0.1,
                             note="dvc pull / git checkout of the other version"))
        for what, mb in sorted(self.rss.items()):
            if what.startswith("ama: "):
                self.rows.append(Row(f"peak RSS {what[5:]}", round(mb, 1), unit="MB",
                                     target=f"< {RSS_LIMIT_MB} MB", passed=mb < RSS_LIMIT_MB,
                                     ratio=round(mb / RSS_LIMIT_MB, 3)))


def table(rows: list[Row]) -> str:
    head = ("measurement", "ama", "dvc", "git-lfs/git", "ratio", "target", "result")

    def show(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:.3f} {unit}" if unit == "s" else \
            f"{value:g} {unit}"

    lines = [(r.measurement, show(r.ama, r.unit), show(r.dvc, r.unit), show(r.git, r.unit),
              "-" if r.ratio is None else f"{r.ratio:.2f}", r.target,
              {True: "PASS", False: "FAIL", None: "-"}[r.passed]) for r in rows]
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2,000 small files in 20 folders, 8 files of 4 MiB")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--big-mib", type=int, default=256, help="size of each big file")
    parser.add_argument("--tools", default="ama,dvc,lfs",
                        help="comma-separated subset of ama,dvc,lfs to run")
    parser.add_argument("--dvc", help="use this dvc executable instead of installing one")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.folders, args.big_mib = 2_000, 20, 4
    tools = [t for t in args.tools.split(",") if t]

    tmp = Path(tempfile.mkdtemp(prefix="ama-bench-lifecycle-", dir="/tmp"))
    bench = Lifecycle(tmp, args.files, args.folders, 8, args.big_mib << 20, tools, args.dvc)
    start = time.perf_counter()
    try:
        bench.setup_tools()
        bench.make_data()
        for tool in ("ama", "dvc", "lfs"):
            if tool in tools:
                try:
                    getattr(bench, f"{tool}_flow")()
                except SystemExit as e:  # one tool failing leaves the others' figures
                    print(f"{e}\nbench: the {tool} figures stop there", file=sys.stderr)
                    bench.status_trees.pop("git" if tool == "lfs" else tool, None)
        bench.status_round()
        return report(bench, args, time.perf_counter() - start)
    finally:
        # Last: deleting some 700,000 files takes minutes here, and the figures are out.
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            print("bench: removing the temp folder", file=sys.stderr)
            shutil.rmtree(tmp, ignore_errors=True)


def report(bench: Lifecycle, args: argparse.Namespace, total: float) -> int:
    """Print the table and write the JSON; return the exit status (1: a target missed)."""
    bench.make_rows()
    print(table(bench.rows), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average": os.getloadavg()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {"small_files": args.files, "folders": args.folders, "big_files": 8,
                 "big_mib": args.big_mib, "changed": len(bench.changed), "quick": args.quick},
        "tools": getattr(bench, "versions", {}),
        "seconds_total": round(total, 1),
        "figures": bench.figures,
        "peak_rss_mb": bench.rss,
        "rows": [asdict(r) for r in bench.rows],
        "all_passed": all(r.passed is not False for r in bench.rows),
    }, indent=2) + "\n")
    print(f"results: {RESULTS} ({total:.0f} s in all)", file=sys.stderr)
    return 0 if all(r.passed is not False for r in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
