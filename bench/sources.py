"""``ama add https://…`` of one large file: seconds and the peak memory of the command.

A sparse file (zeros, no disk) of ``--gib`` GiB (default 3) is served by Python's
http.server on 127.0.0.1; ``ama add URL`` streams it into the store and places it in an
asset directory, and ``ama add --proxy URL`` streams it through the hasher to record it as
a proxy file (its bytes stay at the source). The peak is the child's own max RSS
(``wait4``); the target is < 300 MB, whatever the size. The table goes to stdout and the figures to
``bench/results/sources.json``. Everything lives in one temp folder under /tmp, removed at
the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from toolenv import tool_env, venv_bin

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "sources.json"
TARGET_BYTES = 300_000_000


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its name
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gib", type=float, default=3.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    size = int(args.gib * (1 << 30))
    tmp = Path(tempfile.mkdtemp(prefix="ama-bench-sources."))
    env = tool_env(tmp, AMA_HOME=str(tmp / "home"), AMA_AUTHOR_NAME="bench",
                   AMA_AUTHOR_EMAIL="bench@example.com")
    ama = str(venv_bin() / "ama")
    site = tmp / "site"
    site.mkdir()
    with open(site / "big.bin", "wb") as f:
        f.truncate(size)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        subprocess.run([ama, "class", "init", "bench"], cwd=tmp, env=env, check=True,
                       capture_output=True)
        url = f"http://127.0.0.1:{server.server_address[1]}/big.bin"
        rows = []
        for options in ([], ["--proxy"]):
            m = tmp / ("m-proxy" if options else "m")
            m.mkdir()
            subprocess.run([ama, "init", "bench"], cwd=m, env=env, check=True,
                           capture_output=True)
            started = time.perf_counter()
            child = subprocess.Popen([ama, "add", "-q", *options, url], cwd=m, env=env)
            _pid, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"ama add failed with {os.waitstatus_to_exitcode(status)}")
            peak = usage.ru_maxrss * 1024
            row = {"measurement": f"ama add {' '.join(options) + ' ' if options else ''}"
                                  f"of a {args.gib:g} GiB file over HTTP (127.0.0.1)",
                   "seconds": round(seconds, 2), "peak_rss_bytes": peak,
                   "target": f"peak RSS < {TARGET_BYTES // 1_000_000} MB",
                   "passed": peak < TARGET_BYTES}
            rows.append(row)
            print(f"| {row['measurement']} | {seconds:.1f} s | peak RSS {peak / 1e6:.0f} MB | "
                  f"{'PASS' if row['passed'] else 'FAIL'} |")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "machine": platform.platform(), "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "rows": rows}, indent=2) + "\n")
    finally:
        server.shutdown()
        server.server_close()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
