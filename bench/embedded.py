"""Upload and clone of many small files through the embedded ``file://`` remote, alone.

The same rows as ``bench/lifecycle.py``'s "upload first" and "clone, empty store" for ama,
without DVC, git-lfs or the other rows, so a change to the transfer path can be measured (and
profiled) in minutes: the tree of ``--files`` files of 1 KiB in ``--folders`` folders is made
and added once, then each round copies that staged state, uploads it into a fresh remote and
clones it into an empty store. ``--profile DIR`` runs every timed command under cProfile and
leaves one ``.prof`` file per command there. ``--dir`` keeps the prepared data between runs
(it is made on the first run); without it everything lives in a temp folder removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from toolenv import tool_env, venv_bin

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Run, drop_dirty  # noqa: E402
from run import run as run_child  # noqa: E402

MB = 1_000_000


class Embedded:
    def __init__(self, work: Path, files: int, folders: int, profile: Path | None) -> None:
        self.work = work
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
        shutil.rmtree(where)
        return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="keep the prepared data here between runs")
    parser.add_argument("--profile", type=Path, help="write one cProfile .prof per command here")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()
    temp = None
    if args.dir is None:
        temp = tempfile.mkdtemp(prefix="ama-bench-embedded-")
        args.dir = Path(temp)
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        bench = Embedded(args.dir.resolve(), args.files, args.folders, args.profile)
        bench.prepare()
        rounds = [bench.round(k) for k in range(args.rounds)]
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    summary = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(json.dumps({"files": args.files, "folders": args.folders, "rounds": rounds,
                      "median": summary, "load": os.getloadavg()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
