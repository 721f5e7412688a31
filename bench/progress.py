"""What progress bars cost and how often they move: add, upload, clone, switch and store
verify of one large file, and add and upload of many small files, each command timed with its
bar drawn on a terminal and with ``-q``.

Run it with ``bench/progress.py`` (``--size`` in MiB, 1024 by default; ``--files`` small
files of 1 KiB in folders of 100, 30,000 by default; ``--rounds``, 5 by default). The two
modes run interleaved, quiet then bar in every round (ABAB…), so that a change in the
machine's load falls on both; every run gets its own store and remote under one temp folder,
removed at the end, so that neither finds the other's objects. The bar's stderr is a
pseudo-terminal read by this process; each frame is stamped as it arrives and sorted into
the step it shows (the counting, the command's own transfer, or a named step such as
"syncing to disk"), which gives frames a second per step and the longest wait between two
frames. The table gives, per command, the median seconds of each mode with their spread
(lowest to highest), the bar's cost (the difference of the medians), and the bar's median
frames a second and its longest wait over the rounds; then frames a second per step. The
same figures, and every run, go to ``bench/results/progress.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "progress.json"
AMA = str(Path(sys.executable).with_name("ama"))
COLOUR = re.compile(rb"\x1b\[[0-9;]*m")
MOVE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")  # the cursor moves between frames


@dataclass
class Row:
    step: str
    mode: str
    seconds: float
    frames: int = 0
    frames_per_second: float = 0.0
    longest_wait: float = 0.0
    # Per step shown: [frames, seconds from its first frame to the next step's first].
    phases: dict[str, list[float]] = field(default_factory=dict)


def phase_of(frame: str, label: str) -> str:
    """The step a frame shows: "counting", a named step, or "transfer"."""
    if "counting…" in frame:
        return "counting"
    named = re.match(rf"{label}: ([a-z][a-z ]*[a-z])", frame)
    return named[1] if named else "transfer"


def run(args: list[str], cwd: Path, env: dict[str, str], label: str, bar: bool,
        name: str) -> Row:
    """Run ``ama args``; with ``bar``, stderr on a pseudo-terminal whose frames showing
    ``label`` are stamped and sorted by step."""
    start = time.monotonic()
    if not bar:
        subprocess.run([AMA, *args, "-q"], cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return Row(name, "quiet", time.monotonic() - start)
    primary, secondary = os.openpty()
    proc = subprocess.Popen([AMA, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=secondary)
    os.close(secondary)
    stamps: list[tuple[float, str]] = []
    needle = label.encode()
    tail = b""
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            now = time.monotonic()
            # A frame cut in two by a read is completed by the next one.
            text = MOVE.sub(b"\n", COLOUR.sub(b"", tail + chunk))
            lines = re.split(rb"[\r\n]+", text)
            tail = lines.pop()
            stamps += [(now, phase_of(line.decode("utf-8", "replace").strip(), label))
                       for line in lines if needle in line]
    finally:
        os.close(primary)
    if proc.wait() != 0:
        raise SystemExit(f"ama {' '.join(args)} failed")
    seconds = time.monotonic() - start
    gaps = [b[0] - a[0] for a, b in zip(stamps, stamps[1:], strict=False)]
    shown = (stamps[-1][0] - stamps[0][0]) if len(stamps) > 1 else 0.0
    phases: dict[str, list[float]] = {}
    for i, (when, phase) in enumerate(stamps):
        entry = phases.setdefault(phase, [0, 0.0])
        entry[0] += 1
        # The step lasts until the next frame, whichever step that shows.
        entry[1] += (stamps[i + 1][0] if i + 1 < len(stamps) else when) - when
    return Row(name, "bar", seconds, len(stamps),
               round(len(stamps) / shown, 1) if shown else 0.0,
               round(max(gaps, default=0.0), 3),
               {k: [v[0], round(v[1], 3)] for k, v in phases.items()})


def environment(home: Path) -> dict[str, str]:
    env = {**os.environ, "AMA_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120"}
    for name in list(env):
        if name.startswith("AMA_") and name != "AMA_HOME":
            del env[name]
    return env


def quiet(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run([AMA, *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def lifecycle(base: Path, size: int, bar: bool) -> list[Row]:
    """add, upload, clone into another store, switch between two versions, store verify."""
    home, other = base / "home", base / "other"
    env, env2 = environment(home), environment(other)
    root = base / "m"
    root.mkdir(parents=True)
    block = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as f:
        for i in range(size):
            f.write(i.to_bytes(8, "little") + block[8:])
    for i in range(5):
        (root / f"small{i}.txt").write_text(f"small {i}\n" * 100)
    quiet(["class", "init", "ml-models"], base, env)
    quiet(["init", "ml-models"], root, env)
    rows = [run(["add", "."], root, env, "Staging", bar, "add"),
            run(["upload", "-m", "first"], root, env, "Uploading", bar, "upload")]
    with open(root / "big.bin", "r+b") as f:  # a second version: other bytes, same size
        f.write(b"second version")
    quiet(["add", "-q", "."], root, env)
    quiet(["upload", "-q", "-m", "second"], root, env)
    quiet(["remote", "add", "team", (home / "remote").as_uri()], base, env2)
    quiet(["remote", "default", "team"], base, env2)
    rows.append(run(["clone", "ml-models/1/0.0.0", "-d", "c"], base, env2, "Cloning", bar,
                    "clone"))
    rows.append(run(["switch", "0.0.1"], base / "c", env2, "Switching", bar, "switch"))
    rows.append(run(["store", "verify"], base, env2, "Verifying", bar, "verify"))
    return rows


def make_small(tree: Path, files: int) -> None:
    """``files`` files of 1 KiB, distinct bytes each, in folders of 100."""
    for n in range(files):
        folder = tree / f"d{n // 100:04d}"
        if not n % 100:
            folder.mkdir(parents=True)
        with open(folder / f"f{n:06d}.bin", "wb") as f:
            f.write(n.to_bytes(8, "little") + os.urandom(1016))


def many(base: Path, small: Path, bar: bool) -> list[Row]:
    """add and upload of the small files (a copy of ``small``) to the file:// remote."""
    env = environment(base / "home")
    root = base / "many"
    subprocess.run(["cp", "-a", str(small), str(root)], check=True)
    quiet(["class", "init", "many"], base, env)
    quiet(["init", "many"], root, env)
    return [run(["add", "."], root, env, "Staging", bar, "add many"),
            run(["upload", "-m", "first"], root, env, "Uploading", bar, "upload many")]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} [{min(values):.2f}–{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="the large file, in MiB")
    parser.add_argument("--files", type=int, default=30_000, help="how many small files")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows: list[Row] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ama-bench-progress-") as tmp:
        small = Path(tmp) / "small"
        make_small(small, args.files)
        for n in range(args.rounds):
            for bar in (False, True):
                base = Path(tmp) / f"{n}-{'bar' if bar else 'quiet'}"
                rows += lifecycle(base, args.size, bar)
                rows += many(base, small, bar)
                shutil.rmtree(base)
                loads.append(os.getloadavg()[0])
            print(f"round {n + 1} of {args.rounds} done, load {loads[-1]:.1f}",
                  file=sys.stderr, flush=True)
    steps = list(dict.fromkeys(r.step for r in rows))
    print(f"{args.rounds} rounds, interleaved; seconds: median [lowest–highest]; "
          f"load average during the runs {min(loads):.1f}–{max(loads):.1f}")
    print(f"{'command':<12} {'quiet s':>20} {'bar s':>20} {'bar cost':>9} "
          f"{'frames/s':>9} {'longest wait':>13}")
    summary: dict[str, dict[str, object]] = {}
    for step in steps:
        q = [r.seconds for r in rows if r.step == step and r.mode == "quiet"]
        b = [r for r in rows if r.step == step and r.mode == "bar"]
        bs = [r.seconds for r in b]
        cost = statistics.median(bs) - statistics.median(q)
        fps = statistics.median(r.frames_per_second for r in b)
        wait = max(r.longest_wait for r in b)
        print(f"{step:<12} {spread(q):>20} {spread(bs):>20} {cost:+8.2f}s {fps:9.1f} "
              f"{wait:12.3f}s")
        # Frames a second of each step, over all rounds: frames over the time shown.
        phases: dict[str, list[float]] = {}
        for r in b:
            for name, (frames, seconds) in r.phases.items():
                acc = phases.setdefault(name, [0, 0.0])
                acc[0] += frames
                acc[1] += seconds
        summary[step] = {"quiet": q, "bar": bs, "cost": round(cost, 3),
                         "frames_per_second": fps, "longest_wait": wait,
                         "phases": {k: {"frames": int(v[0]), "seconds": round(v[1], 3),
                                        "frames_per_second": round(v[0] / v[1], 1)
                                        if v[1] else None} for k, v in phases.items()}}
    print()
    print("frames a second per step (all rounds; a step shown for under 0.1 s has no rate):")
    for step in steps:
        parts = [f"{k} {v['frames_per_second'] if v['frames_per_second'] is not None else '–'}"
                 f" ({v['seconds']:.1f} s)"
                 for k, v in summary[step]["phases"].items()]  # type: ignore[attr-defined]
        print(f"  {step:<12} " + "; ".join(parts))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"size_mib": args.size, "small_files": args.files,
                                   "rounds": args.rounds, "loads": loads,
                                   "summary": summary,
                                   "rows": [asdict(r) for r in rows]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
