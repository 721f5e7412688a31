"""The git hook benchmark: how long ama's hooks add to git commands.

Run it with ``.venv/bin/python bench/hooks.py`` (``--files N`` for the size of the asset
checkout, default 1,000; ``--runs N`` per figure, default 30). It builds, in one temp folder
under /tmp removed at the end, an asset with two versions on the embedded remote and a git
repository that checks it out (``ama git add``) with ``ama hooks install``, then times:

  pre-commit (hook alone)     the installed hook as git runs it, for a commit that touches
                              neither ama.lock nor the asset folder. Target: under 150 ms.
  git commit, hooks vs none   ``git commit`` of a code change with the hooks, and with
                              ``--no-verify`` (the difference is what the hooks cost).
  post-checkout (no change)   ``git checkout`` between two branches with the same ama.lock.
  pre-push (no lock change)   the pre-push hook for commits that do not change ama.lock.
  pre-commit (asset touched)  the hook after a file of the checkout was touched (starts ama,
                              checks the checkout by stat, re-hashes the touched file).
  checkout switching version  ``git checkout`` to a branch locking the other version (the
                              post-checkout hook switches the asset).

Medians and 95th percentiles in milliseconds go to stdout, and the same figures to
``bench/results/hooks.json``.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
TARGET_MS = 150.0


def run(argv: list[str], cwd: Path, env: dict[str, str], input: str | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, input=input)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def timed(action: Callable[[], object], runs: int,
          before: Callable[[], object] | None = None) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 1),
            "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 1),
            "min_ms": round(samples[0], 1), "runs": runs}


def checkout_between(work: Path, env: dict[str, str], *branches: str) -> Callable[[], None]:
    """An action that checks out each of ``branches`` in turn, one per call."""
    calls = [0]

    def action() -> None:
        run(["git", "checkout", "-q", branches[calls[0] % len(branches)]], work, env)
        calls[0] += 1

    return action


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    top = Path(tempfile.mkdtemp(prefix="ama-bench-hooks."))
    try:
        return bench(top, args.files, args.runs)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def bench(top: Path, files: int, runs: int) -> int:
    home = top / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AMA_", "GIT_", "ASSET_SERVER_"))}
    env.update({"HOME": str(home), "AMA_HOME": str(home / ".ama"), "GIT_CONFIG_NOSYSTEM": "1",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "AMA_AUTHOR_NAME": "Bench", "AMA_AUTHOR_EMAIL": "bench@example.org",
                "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
                "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.org"})
    ama = str(BIN / "ama")

    src = top / "src"
    src.mkdir()
    run([ama, "class", "init", "data"], top, env)
    run([ama, "init", "data"], src, env)
    for i in range(files):
        folder = src / f"d{i % 20:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(1024))
    run([ama, "add", "."], src, env)
    run([ama, "upload", "-m", "v0"], src, env)
    (src / "d00" / "f00000.bin").write_bytes(os.urandom(1024))
    run([ama, "update", "--all"], src, env)
    run([ama, "upload", "-m", "v1"], src, env)

    bare, work = top / "origin.git", top / "repo"
    run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], top, env)
    run(["git", "init", "-q", "-b", "main", str(work)], top, env)
    (work / "train.py").write_text("step = 0\n")
    run(["git", "add", "train.py"], work, env)
    run(["git", "commit", "-q", "-m", "start"], work, env)
    run(["git", "remote", "add", "origin", str(bare)], work, env)
    run([ama, "hooks", "install"], work, env)
    run([ama, "git", "add", "data/1/0.0.0", "--path", "data"], work, env)
    run(["git", "add", "ama.lock", ".gitignore"], work, env)
    run(["git", "commit", "-q", "-m", "data 0.0.0"], work, env)
    run(["git", "push", "-q", "origin", "main"], work, env)
    run(["git", "branch", "same"], work, env)  # same ama.lock
    run(["git", "checkout", "-q", "-b", "newer"], work, env)
    run([ama, "switch", "--version", "0.0.1"], work / "data", env)
    run([ama, "git", "add", "data"], work, env)
    run(["git", "commit", "-q", "-m", "data 0.0.1", "ama.lock"], work, env)
    run(["git", "checkout", "-q", "main"], work, env)
    time.sleep(1.1)  # let the checkout's files age past the last check's stamp
    run(["git", "commit", "-q", "--allow-empty", "-m", "settle"], work, env)

    hooks = work / ".git" / "hooks"
    counter = [0]

    def code_change() -> None:
        counter[0] += 1
        (work / "train.py").write_text(f"step = {counter[0]}\n")
        run(["git", "add", "train.py"], work, env)

    results: dict[str, Any] = {}
    results["pre-commit (hook alone)"] = timed(
        lambda: run([str(hooks / "pre-commit")], work, env), runs)
    results["git commit with hooks"] = timed(
        lambda: run(["git", "commit", "-q", "-m", "code"], work, env), runs, code_change)
    results["git commit --no-verify"] = timed(
        lambda: run(["git", "commit", "-q", "--no-verify", "-m", "code"], work, env), runs,
        code_change)
    results["git checkout, same ama.lock"] = timed(
        checkout_between(work, env, "same", "main"), runs)
    run(["git", "checkout", "-q", "main"], work, env)
    head = run(["git", "rev-parse", "HEAD"], work, env).strip()
    pushed = run(["git", "rev-parse", "origin/main"], work, env).strip()
    stdin = f"refs/heads/main {head} refs/heads/main {pushed}\n"
    results["pre-push (no ama.lock change)"] = timed(
        lambda: run([str(hooks / "pre-push"), "origin", str(bare)], work, env, stdin), runs)

    touched = work / "data" / "d05" / "f00005.bin"

    def touch() -> None:
        os.utime(touched)
        time.sleep(0.01)

    results["pre-commit (asset file touched)"] = timed(
        lambda: run([str(hooks / "pre-commit")], work, env), max(5, runs // 3), touch)
    results["git checkout switching the asset version"] = timed(
        checkout_between(work, env, "newer", "main"), max(5, runs // 3))
    overhead = round(results["git commit with hooks"]["median_ms"]
                     - results["git commit --no-verify"]["median_ms"], 1)
    results["hooks' share of git commit (median)"] = {"ms": overhead}

    print(f"ama git hooks, asset of {files} files of 1 KiB, {runs} runs "
          f"({platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores)")
    for name, figures in results.items():
        if "median_ms" in figures:
            print(f"  {name:42s} median {figures['median_ms']:7.1f} ms   "
                  f"p95 {figures['p95_ms']:7.1f} ms")
        else:
            print(f"  {name:42s} {figures['ms']:7.1f} ms")
    fast = results["pre-commit (hook alone)"]["p95_ms"]
    verdict = "met" if fast < TARGET_MS else "MISSED"
    print(f"target: pre-commit under {TARGET_MS:.0f} ms when nothing asset-related changed: "
          f"{verdict} (p95 {fast} ms)")
    out = Path(__file__).resolve().parent / "results" / "hooks.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"files": files, "runs": runs, "results": results},
                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
