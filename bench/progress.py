"""What progress bars cost: one large file and a few small ones through add, upload, clone
and switch, each command timed with its bar drawn on a terminal and with ``-q``.

Run it with ``bench/progress.py`` (``--size`` in MiB, 1024 by default). Each mode (bar, quiet)
gets its own store and remote under one temp folder, removed at the end, so that neither
finds the other's objects. The bar's stderr is a pseudo-terminal read by this process; the
frames are counted as they arrive, which gives how often the bar redrew (frames a second,
and the longest wait between two frames) beside the wall time of the command, and how many
frames each step after the transfer drew (counting, placing files, syncing to disk). The
table goes to stdout and the same figures to ``bench/results/progress.json``.

``--small N`` adds N small files to the version (a checkout of many files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "progress.json"
AMA = str(Path(sys.executable).with_name("ama"))


@dataclass
class Row:
    step: str
    mode: str
    seconds: float
    frames: int = 0
    frames_per_second: float = 0.0
    longest_wait: float = 0.0
    phases: dict[str, int] = field(default_factory=dict)  # frames drawn per step


PHASES = ("counting…", ": placing files", ": syncing to disk")


def run(args: list[str], cwd: Path, env: dict[str, str], label: str, bar: bool) -> Row:
    """Run ``ama args``; with ``bar``, stderr on a pseudo-terminal whose frames showing
    ``label`` are counted and timed."""
    start = time.monotonic()
    if not bar:
        subprocess.run([AMA, *args, "-q"], cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return Row(" ".join(args[:1]), "quiet", time.monotonic() - start)
    primary, secondary = os.openpty()
    proc = subprocess.Popen([AMA, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    stamps: list[float] = []
    needle = label.encode()
    phases = dict.fromkeys(PHASES, 0)
    tail = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            stamps += [time.monotonic()] * chunk.count(needle)
            seen = tail + chunk  # a name cut in two by a read is counted once
            for name in PHASES:
                phases[name] += seen.count(name.encode()) - tail.count(name.encode())
            tail = chunk[-64:]
    finally:
        os.close(primary)
    if proc.wait() != 0:
        raise SystemExit(f"ama {' '.join(args)} failed")
    seconds = time.monotonic() - start
    # The first frames come before the work (the counting and the totals); the rate is
    # over the time the bar was up.
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    shown = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return Row(" ".join(args[:1]), "bar", seconds, len(stamps),
               round(len(stamps) / shown, 1) if shown else 0.0,
               round(max(gaps, default=0.0), 3),
               {k.strip(": ").rstrip("…"): v for k, v in phases.items()})


def lifecycle(base: Path, size: int, bar: bool, small: int = 5) -> list[Row]:
    """add, upload, clone into another store, switch between two versions, store verify."""
    home, other = base / "home", base / "other"
    env = {**os.environ, "AMA_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120"}
    for name in list(env):
        if name.startswith("AMA_") and name != "AMA_HOME":
            del env[name]
    env2 = {**env, "AMA_HOME": str(other)}
    root = base / "m"
    root.mkdir(parents=True)
    block = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as f:
        for i in range(size):
            f.write(i.to_bytes(8, "little") + block[8:])
    for i in range(small):
        folder = root / f"s{i // 1000}"
        folder.mkdir(exist_ok=True)
        (folder / f"small{i}.txt").write_text(f"small {i}\n" * 100)
    subprocess.run([AMA, "class", "init", "ml-models"], cwd=base, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([AMA, "init", "ml-models"], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    rows = [run(["add", "."], root, env, "Staging", bar),
            run(["upload", "-m", "first"], root, env, "Uploading", bar)]
    with open(root / "big.bin", "r+b") as f:  # a second version: other bytes, same size
        f.write(b"second version")
    subprocess.run([AMA, "add", "-q", "."], cwd=root, env=env, check=True)
    subprocess.run([AMA, "upload", "-q", "-m", "second"], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    remote = (home / "remote").as_uri()
    subprocess.run([AMA, "remote", "add", "team", remote], cwd=base, env=env2, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([AMA, "remote", "default", "team"], cwd=base, env=env2, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows.append(run(["clone", "ml-models/1/0.0.0", "-d", "c"], base, env2, "Cloning", bar))
    rows.append(run(["switch", "0.0.1"], base / "c", env2, "Switching", bar))
    rows.append(run(["store", "verify"], base, env2, "Verifying", bar))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="the large file, in MiB")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--small", type=int, default=5, help="how many small files")
    parser.add_argument("--steps", default="add,upload,clone,switch,store",
                        help="the steps to print (all run)")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ama-bench-progress-") as tmp:
        for n in range(args.rounds):
            for bar in (False, True):
                base = Path(tmp) / f"{n}-{'bar' if bar else 'quiet'}"
                rows += lifecycle(base, args.size, bar, args.small)
                shutil.rmtree(base)
    print(f"{'step':<8} {'mode':<6} {'seconds':>8} {'frames':>7} {'frames/s':>9} "
          f"{'longest wait':>13}  frames per step")
    shown = args.steps.split(",")
    for r in rows:
        if r.step not in shown:
            continue
        steps = " ".join(f"{k}={v}" for k, v in r.phases.items())
        print(f"{r.step:<8} {r.mode:<6} {r.seconds:8.2f} {r.frames:7d} "
              f"{r.frames_per_second:9.1f} {r.longest_wait:12.3f}s  {steps}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"size_mib": args.size, "small_files": args.small,
                                   "rows": [asdict(r) for r in rows]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
