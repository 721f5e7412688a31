"""The Python API's benchmark: reading one file of a large version without cloning it.

``.venv/bin/python bench/api.py`` makes a version of 100,000 files of 1 KiB in 1,000
folders on an embedded (file://) remote, then, from an empty asset store each time, opens
one file with ``ama.version(NAME).open(PATH)`` and reads it. It counts the objects brought
from the remote (the target: one file's bytes, plus the root tree and the one folder along
the path) and times the lookup, the open and the read in-process (best of 5; the target is
under 0.5 s). It also times the same read as a fresh ``python -c`` process, which adds
Python's start-up and the imports. The table goes to stdout and the figures to
``bench/results/api.json``. Everything lives in one temp folder under /tmp, removed at the
end (``--keep`` keeps it).
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
from pathlib import Path

from toolenv import tool_env

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "api.json"
TARGET_SECONDS = 0.5


def make_version(tmp: Path, files: int, folders: int) -> tuple[str, str]:
    """Upload ``files`` files of 1 KiB in ``folders`` folders; return the remote URL and
    the path of the file to read."""
    import ama

    root = tmp / "asset"
    per = files // folders
    for d in range(folders):
        folder = root / f"d{d:04}"
        folder.mkdir(parents=True)
        for f in range(per):
            n = d * per + f
            (folder / f"f{n:06}.bin").write_bytes(n.to_bytes(8, "big") * 128)
    ama.create_class("bench")
    started = time.perf_counter()
    ama.create("bench", root).upload("100,000 files")
    print(f"made the version in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    url = (Path(os.environ["AMA_HOME"]) / "remote").as_uri()
    return url, f"d{folders // 2:04}/f{(folders // 2) * per:06}.bin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ama-bench-api."))
    env = tool_env(tmp, AMA_HOME=str(tmp / "writer"), AMA_AUTHOR_NAME="bench",
                   AMA_AUTHOR_EMAIL="bench@example.com")
    os.environ.update(env)
    try:
        import ama

        url, path = make_version(tmp, args.files, args.folders)
        times, fetched, blobs = [], [], []
        for n in range(args.repeat):
            client = ama.Client(remote=url, home=tmp / f"cold-{n}")
            started = time.perf_counter()
            with client.version("bench/1").open(path) as fh:
                data = fh.read()
            times.append(time.perf_counter() - started)
            assert len(data) == 1024
            fetched.append(client.objects_fetched)
            blobs.append(client.blobs_fetched)
        code = (f"import ama; c = ama.Client(remote={url!r}, home={str(tmp / 'cold-p')!r}); "
                f"f = c.version('bench/1').open({path!r}); assert len(f.read()) == 1024")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        process = time.perf_counter() - started
        best = min(times)
        row = {"measurement": f"v.open() of one 1 KiB file of a {args.files:,}-file version, "
                              "cold store, embedded remote",
               "seconds_best": round(best, 4), "seconds_all": [round(t, 4) for t in times],
               "objects_fetched": fetched[0], "blobs_fetched": blobs[0],
               "seconds_fresh_process": round(process, 3),
               "target": f"1 blob fetched, < {TARGET_SECONDS} s",
               "passed": best < TARGET_SECONDS and set(blobs) == {1}}
        print(f"| {row['measurement']} | {best:.3f} s | objects fetched {fetched[0]} "
              f"(blobs {blobs[0]}) | fresh process {process:.2f} s | "
              f"{'PASS' if row['passed'] else 'FAIL'} |")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "machine": platform.platform(), "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "rows": [row]}, indent=2) + "\n")
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
