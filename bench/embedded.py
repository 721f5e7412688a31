"""Upload and clone of many small files through the embedded ``file://`` remote, alone.

The same rows as ``bench/lifecycle.py``'s "upload first" and "clone, empty store" for ama,
without DVC, git-lfs or the other rows, so a change to the transfer path can be measured (and
profiled) in minutes: the tree of ``--files`` files of 1 KiB in ``--folders`` folders is made
and added once, then each round copies that staged state, uploads it into a fresh remote and
clones it into an empty store. ``--profile DIR`` runs every timed command under cProfile and
leaves one ``.prof`` file per command there. ``--dir`` keeps the prepared data between runs
(it is made on the first run); without it everything lives in a temp folder removed at the end.

``--dvc PATH`` (or ``--dvc install``: ``pip install dvc`` into a virtualenv of the work folder,
as ``bench/lifecycle.py`` does) adds DVC's rows to each round, measured right after ama's on
the same files: ``dvc push`` of the added tree to a local remote folder, and ``dvc pull`` into
a new workspace with an empty cache (hard links, as ama's clone). The figures and the ratios
(DVC's time over ama's) go to ``bench/results/embedded.json``.

Each round also measures the floor (``bench/floor.py``): the file-system work the upload and
the clone cannot avoid with a store of loose objects, done by a bare loop on the same disk, and
DVC's time over it, the largest ratio any tool could show there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toolenv import tool_env, venv_bin

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Run, drop_dirty  # noqa: E402
from run import run as run_child  # noqa: E402

MB = 1_000_000
RESULTS = HERE / "results" / "embedded.json"


class Embedded:
    def __init__(self, work: Path, files: int, folders: int, profile: Path | None,
                 dvc: str | None = None) -> None:
        self.work = work
        self.dvc = dvc
        self.files, self.folders = files, folders
        self.profile = profile
        self.python = str(venv_bin() / "python")
        self.script = str(venv_bin() / "ama")  # a Python script: cProfile can run it
        self.env = tool_env(work, AMA_AUTHOR_NAME="bench", AMA_AUTHOR_EMAIL="bench@example.com")
        if os.environ.get("PYTHONPATH"):
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        (work / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
        self.base = work / "base"
        self.remote = work / "remote"
        self.dvc_remote = work / "dvc-remote"
        self.log = work / "log"
        self.log.mkdir(exist_ok=True)
        self._n = 0

    def ama(self, name: str | None = None) -> list[str]:
        """The command line that runs ama (under cProfile into ``name``.prof when profiling)."""
        if self.profile is not None and name is not None:
            return [self.python, "-m", "cProfile", "-o", str(self.profile / f"{name}.prof"),
                    self.script]
        return [self.python, self.script]

    def quiet(self, argv: list[str], cwd: Path, env: dict[str, str]) -> str:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed in {cwd}:\n"
                             f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return proc.stdout

    def timed(self, argv: list[str], cwd: Path, env: dict[str, str]) -> Run:
        drop_dirty()
        self._n += 1
        result = run_child(argv, env, cwd, out=self.log / f"out-{self._n}")
        if result.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed with exit code "
                             f"{result.returncode}:\n"
                             f"{result.stdout[-2000:].decode(errors='replace')}")
        return result

    def home(self, home: Path) -> dict[str, str]:
        env = {**self.env, "AMA_HOME": str(home)}
        self.quiet(self.ama() + ["config", "set", "link.strategy", "hardlink"], self.work, env)
        return env

    def prepare(self) -> None:
        """The tree, added (staged) in a store of its own, made once."""
        if (self.base / "done").exists():
            return
        tree = self.base / "tree"
        if not (self.base / "made").exists():
            shutil.rmtree(self.base, ignore_errors=True)
            self.make_tree(tree)
            (self.base / "made").write_text("")
        for old in (self.base / "home", self.base / "remote", self.remote, tree / ".ama"):
            shutil.rmtree(old, ignore_errors=True)
        env = self.home(self.base / "home")
        # The remote's path is the same in every round: the staged state names it.
        self.remote.mkdir()
        self.quiet(self.ama() + ["remote", "add", "bench", f"file://{self.remote}"], tree, env)
        self.quiet(self.ama() + ["remote", "default", "bench"], tree, env)
        self.quiet(self.ama() + ["class", "init", "bench"], tree, env)
        self.quiet(self.ama() + ["init", "bench"], tree, env)
        self.quiet(self.ama() + ["add", "-q", "."], tree, env)
        os.replace(self.remote, self.base / "remote")
        (self.base / "done").write_text("")

    def prepare_dvc(self) -> None:
        """A DVC workspace of the same files, ``dvc add``-ed (into a cache of hard links to
        them), with its remote folder named: made once, as ama's staged state."""
        assert self.dvc
        repo = self.base / "dvc"
        if (self.base / "dvc-done").exists():
            return
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir()
        self.quiet([self.dvc, "init", "--no-scm", "-q"], repo, self.env)
        self.quiet([self.dvc, "config", "core.analytics", "false"], repo, self.env)
        self.quiet([self.dvc, "config", "cache.type", "hardlink"], repo, self.env)
        self.quiet([self.dvc, "remote", "add", "-d", "store", str(self.dvc_remote)], repo,
                   self.env)
        shutil.copytree(self.base / "tree", repo / "data",
                        ignore=shutil.ignore_patterns(".ama*"))
        self.quiet([self.dvc, "add", "-q", "data"], repo, self.env)
        (self.base / "dvc-done").write_text("")

    def dvc_round(self, k: int, where: Path) -> dict[str, float]:
        """``dvc push`` of the added workspace into an empty remote folder, then ``dvc pull``
        of it into a new workspace with an empty cache."""
        assert self.dvc
        shutil.rmtree(self.dvc_remote, ignore_errors=True)
        # One cp, so the hard links between the workspace and its cache stay links.
        subprocess.run(["cp", "-a", str(self.base / "dvc"), str(where)], check=True)
        repo = where / "dvc"
        push = self.timed([self.dvc, "push", "-q"], repo, self.env)
        clone = where / "dvc-clone"
        clone.mkdir()
        shutil.copytree(repo / ".dvc", clone / ".dvc",
                        ignore=shutil.ignore_patterns("cache", "tmp"))
        self.quiet([self.dvc, "config", "cache.type", "hardlink"], clone, self.env)
        shutil.copy(repo / "data.dvc", clone / "data.dvc")
        pull = self.timed([self.dvc, "pull", "-q"], clone, self.env)
        got = sum(1 for _ in (clone / "data").rglob("*.bin"))
        if got != self.files:
            raise SystemExit(f"bench: dvc pull brought {got} files, not {self.files}")
        print(f"bench: round {k}: dvc push {push.seconds:.2f} s, dvc pull {pull.seconds:.2f} s "
              f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        return {"dvc_push": push.seconds, "dvc_pull": pull.seconds,
                "dvc_push_rss_mb": push.max_rss / MB, "dvc_pull_rss_mb": pull.max_rss / MB}

    def floor(self, where: Path) -> dict[str, float]:
        """The same file-system work as the upload and the clone, done by a bare loop
        (``bench/floor.py``): the least either can take on this disk."""
        work = where / "floor"
        work.mkdir()
        drop_dirty()
        out = self.quiet([sys.executable, str(HERE / "floor.py"), str(self.base / "tree"),
                          str(work)], where, self.env)
        shutil.rmtree(work)
        got = json.loads(out)
        print(f"bench: round floor: upload {got['upload']:.2f} s, clone {got['clone']:.2f} s",
              file=sys.stderr, flush=True)
        return {"floor_upload": got["upload"], "floor_clone": got["clone"]}

    def make_tree(self, tree: Path) -> None:
        per = self.files // self.folders
        n = 0
        for d in range(self.folders):
            folder = tree / f"d{d:04d}"
            folder.mkdir(parents=True)
            for _ in range(per):
                with open(folder / f"f{n:06d}.bin", "wb") as f:
                    f.write(n.to_bytes(8, "little") + os.urandom(1016))
                n += 1

    def round(self, k: int) -> dict[str, float]:
        where = self.work / f"round-{k}"
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir()
        shutil.rmtree(self.remote, ignore_errors=True)
        # One cp, so the hard links between the tree and its store stay links.
        subprocess.run(["cp", "-a", str(self.base / "home"), str(self.base / "tree"),
                        str(where)], check=True)
        subprocess.run(["cp", "-a", str(self.base / "remote"), str(self.remote)], check=True)
        tree, remote = where / "tree", self.remote
        env = {**self.env, "AMA_HOME": str(where / "home")}
        up = self.timed(self.ama(f"upload-{k}") + ["upload", "-q", "-m", "first"], tree, env)
        name = json.loads(self.quiet(self.ama() + ["status", "--json"], tree, env))["asset"]
        cold = self.home(where / "cold")
        self.quiet(self.ama() + ["remote", "add", "bench", f"file://{remote}"], where, cold)
        self.quiet(self.ama() + ["remote", "default", "bench"], where, cold)
        clone = self.timed(self.ama(f"clone-{k}") + ["clone", "-q", name, "-d",
                                                     str(where / "clone")], where, cold)
        got = sum(1 for _ in (where / "clone").rglob("*.bin"))
        if got != self.files:
            raise SystemExit(f"bench: the clone has {got} files, not {self.files}")
        figures = {"upload": up.seconds, "clone": clone.seconds,
                   "upload_rss_mb": up.max_rss / MB, "clone_rss_mb": clone.max_rss / MB}
        print(f"bench: round {k}: upload {up.seconds:.2f} s, clone {clone.seconds:.2f} s "
              f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        figures["load_ama"] = os.getloadavg()[0]
        figures.update(self.floor(where))
        if self.dvc:
            figures.update(self.dvc_round(k, where))
            figures["push_ratio"] = figures["dvc_push"] / figures["upload"]
            figures["pull_ratio"] = figures["dvc_pull"] / figures["clone"]
            # The ratio any tool keeping loose objects could reach on this disk at best.
            figures["push_ratio_floor"] = figures["dvc_push"] / figures["floor_upload"]
            figures["pull_ratio_floor"] = figures["dvc_pull"] / figures["floor_clone"]
            figures["load_dvc"] = os.getloadavg()[0]
        shutil.rmtree(where)
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="keep the prepared data here between runs")
    parser.add_argument("--profile", type=Path, help="write one cProfile .prof per command here")
    parser.add_argument("--dvc", help="measure DVC too: its executable, or 'install' to pip "
                        "install it into the work folder")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    temp = None
    if args.dir is None:
        temp = tempfile.mkdtemp(prefix="ama-bench-embedded-")
        args.dir = Path(temp)
    args.dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    versions: dict[str, str] = {}
    try:
        work = args.dir.resolve()
        if args.dvc == "install":
            args.dvc = install_dvc(work)
        bench = Embedded(work, args.files, args.folders, args.profile, args.dvc)
        bench.prepare()
        versions["ama"] = bench.quiet(bench.ama() + ["--version"], work, bench.env).strip()
        if args.dvc:
            bench.prepare_dvc()
            versions["dvc"] = bench.quiet([args.dvc, "--version"], work, bench.env).strip()
        rounds = [bench.round(k) for k in range(args.rounds)]
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    summary = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    if args.dvc:
        # The ratio of the medians, besides each round's own (which the rounds list).
        summary["push_ratio_of_medians"] = summary["dvc_push"] / summary["upload"]
        summary["pull_ratio_of_medians"] = summary["dvc_pull"] / summary["clone"]
        summary["pull_ratio_floor_of_medians"] = summary["dvc_pull"] / summary["floor_clone"]
        summary["push_ratio_floor_of_medians"] = summary["dvc_push"] / summary["floor_upload"]
    result = {"files": args.files, "folders": args.folders, "tools": versions,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "seconds_total": round(time.perf_counter() - started, 1),
              "rounds": rounds, "median": summary, "load": os.getloadavg()}
    print(json.dumps(result, indent=2))
    if args.dvc and args.profile is None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"results: {RESULTS}", file=sys.stderr)
    return 0


def install_dvc(work: Path) -> str:
    """Install DVC into a virtualenv of its own in ``work`` (once); return its executable."""
    venv = work / "tools" / "dvc"
    dvc = venv / "bin" / "dvc"
    if not dvc.exists():
        print("bench: installing dvc into its own virtualenv (pip install dvc)",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "dvc"],
                             capture_output=True, text=True)
        if pip.returncode != 0:
            raise SystemExit(f"bench: pip install dvc failed:\n{pip.stderr[-3000:]}")
    return str(dvc)


if __name__ == "__main__":
    sys.exit(main())
