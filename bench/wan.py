"""The far-network benchmark: ``ama upload`` and ``ama clone`` against ``ama-server`` on S3
(moto), both some milliseconds away, and how many requests each operation makes.

Run it with ``.venv/bin/python bench/wan.py`` (``--rtt 0,20,80`` by default; ``--files
100000`` for the large run; ``--dvc PATH`` or ``--dvc install`` adds ``dvc push`` and
``dvc pull`` to the same S3 through the same proxy). moto's S3 server (a process of its
own, so that it shares no interpreter lock with the proxies) and ``ama-server serve``
(gunicorn, 2 workers) run on 127.0.0.1, each behind the proxy of
``tests/services/wan.py`` that delays every chunk by half the round trip each way; the
server reaches S3 through its proxy too, so the presigned URLs it hands out name the
proxy, and every byte the client or the server moves pays the latency. With
``--server-near-storage`` the server reaches moto directly, as one deployed beside its
bucket does, and signs URLs for the proxy's address (``AMA_S3_PRESIGN_ENDPOINT_URL``): the
clients still pay the latency on every byte, the server's read-back of what they sent does
not (and its own S3 requests are then not counted). Each command runs
as a whole subprocess, as a user runs it, once per latency (each step changes what the
next one sees). Everything lives in one temp folder under /tmp, removed at the end
(``--keep`` keeps it). The files are spread over 1,000 folders (``--folders``). The table
goes to stdout and the same figures to ``bench/results/wan.json`` (``--out`` names
another file, so that runs at different latencies keep their own).

Columns: seconds; requests and connections the ama-server saw; requests to S3 from the
client (presigned URLs; all of DVC's) and from the server (its own, signed in headers),
and S3 connections; for ama, all its requests (server and S3) per 1,000 files; the peak
resident memory of the command (with the children it waited for, measured by a small
process that starts it). moto's
server closes every connection after one answer (and gunicorn's sync workers do too), so
against them connections equal requests whatever the client does. A command that fails is
reported with its exit code and last line of error; one that runs past its timeout
(``--timeout``, ``--dvc-timeout`` for DVC's) is stopped and shown as "> N s (stopped)".
Each upload's and clone's result is checked: the clone must hold every file of the data
with its size, or the row says what is wrong.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from toolenv import tool_env, venv_bin  # noqa: E402

from ama.plumbing.multipart import DEFAULT_THRESHOLD  # noqa: E402
from tests.services.server import run_ama_server, start_server  # noqa: E402
from tests.services.wan import WanProxy  # noqa: E402

RESULTS = HERE / "results" / "wan.json"
MiB = 1 << 20
PROJECT = "bench"
SIGNED = "X-Amz-Signature="
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


@dataclass
class Row:
    rtt_ms: float
    tool: str
    operation: str
    seconds: float
    code: int
    server_requests: int | None
    server_connections: int | None
    s3_client_requests: int
    s3_server_requests: int
    s3_connections: int
    error: str = ""
    peak_rss_mb: float | None = None
    timeout: float | None = None
    files: int | None = None
    requests_per_1000: float | None = None
    checked: bool | None = None
    # Processor seconds (user and system) moto's process spent during the command: the
    # storage's own work, which on this machine both tools wait on.
    storage_cpu_seconds: float | None = None


# Runs a command and writes the peak resident memory of the processes it waited for (the
# command's own, with its children's) to the file argv[1]; dies of the command's signal.
# Measured in this small process, not by wait4 in the benchmark's: a child forked from the
# benchmark starts with the benchmark's size as its peak.
_MEASURE = ("import os, resource, subprocess, sys\n"
            "code = subprocess.call(sys.argv[2:])\n"
            "with open(sys.argv[1], 'w') as f:\n"
            "    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "if code < 0:\n"
            "    os.kill(os.getpid(), -code)\n"
            "sys.exit(code)\n")


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float
         ) -> tuple[float, int, str, float]:
    """Run a command; return (seconds, exit code, the last line of its stderr that names
    an error, else its last line, and its peak resident memory in MB with that of the
    children it waited for). A command still running after ``timeout`` seconds is killed
    with its process group and given the exit code -1."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err_file, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        args = [sys.executable, "-c", _MEASURE, rss_file.name, *args]
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                   stderr=err_file, start_new_session=True)
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            _, status, _ = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        process.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - start
        err_file.seek(0)
        err = err_file.read().decode(errors="replace")
        peak_kib = int(rss_file.read() or 0)
    if stopped.is_set():
        code, err = -1, f"stopped after {timeout:.0f} s; {err}"
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    # ru_maxrss is in KiB on Linux.
    return (seconds, code, ((errors or lines)[-1] if code and lines else ""),
            peak_kib / 1024)


def _check(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"bench: {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def make_data(root: Path, files: int, size: int, folders: int = 1000) -> Path:
    """``files`` files of ``size`` distinct bytes, spread evenly over ``folders`` folders
    (fewer when there are fewer files)."""
    data = root / "data"
    folders = max(1, min(folders, files))
    for n in range(files):
        folder = data / f"d{n * folders // files:04}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n:06}.bin").write_bytes(n.to_bytes(8, "little")
                                              + os.urandom(max(0, size - 8)))
    return data


def sizes_of(tree: Path) -> dict[str, int]:
    """Every file below ``tree`` by name (the benchmark's names are unique) → size."""
    found: dict[str, int] = {}
    for folder, _dirs, names in os.walk(tree):
        for name in names:
            found[name] = os.stat(os.path.join(folder, name)).st_size
    return found


def check_copy(expected: dict[str, int], tree: Path) -> str:
    """What is wrong with the copy in ``tree`` of files ``expected`` (name → size), or
    ""; the stores' own files (.ama, .dvc*) are not counted."""
    if not tree.is_dir():
        return f"check failed: {tree.name} was not made"
    got = {name: size for name, size in sizes_of(tree).items() if name in expected}
    missing = len(expected) - len(got)
    wrong = sum(1 for name, size in got.items() if expected[name] != size)
    if missing or wrong:
        return (f"check failed: {missing} of {len(expected)} files missing, {wrong} of "
                "another size")
    return ""


class Bench:
    def __init__(self, tmp: Path, data: Path, s3_endpoint: str, timeout: float,
                 dvc: str | None, dvc_timeout: float | None = None) -> None:
        self.tmp = tmp
        self.data = data
        self.s3_endpoint = s3_endpoint
        self.timeout = timeout
        self.dvc = dvc
        self.dvc_timeout = dvc_timeout or timeout
        self.expected: dict[Path, dict[str, int]] = {}
        self.out: Path | None = None
        self.dvc_push = True
        self.meta: dict[str, Any] = {}
        self.rows: list[Row] = []
        self.client_env: dict[str, str] = {}
        self.server_near_storage = False
        self.link: str | None = None
        self.clone = True
        self.storage_pid: int | None = None  # moto's, whose processor time rows report

    def save(self) -> None:
        """Write the figures so far to ``out``: a long run that dies keeps its rows."""
        if self.out is None:
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps({
            **self.meta, "machine": {**self.meta.get("machine", {}), "load": os.getloadavg()},
            "rows": [asdict(r) for r in self.rows]}, indent=2) + "\n")

    def files_of(self, data: Path) -> dict[str, int]:
        if data not in self.expected:
            self.expected[data] = sizes_of(data)
        return self.expected[data]

    def measure(self, rtt: float, tool: str, operation: str, args: list[str], cwd: Path,
                env: dict[str, str], s3: WanProxy, server: WanProxy | None,
                data: Path | None = None, copy: Path | None = None) -> Row:
        """Run one command and record its row; ``copy``, when given, is the folder that
        must then hold every file of ``data`` with its size."""
        s3.reset_counts()
        if server is not None:
            server.reset_counts()
        timeout = self.timeout if tool == "ama" else self.dvc_timeout
        cpu_before = _cpu_seconds(self.storage_pid)
        seconds, code, error, rss = _run(args, cwd, env, timeout)
        cpu_after = _cpu_seconds(self.storage_pid)
        # With no ama-server in between (DVC), every S3 request is the client's own.
        client = s3.count(path=SIGNED) if server is not None else s3.count()
        expected = self.files_of(data or self.data)
        row = Row(rtt, tool, operation, round(seconds, 2), code,
                  server.count() if server else None, server.connections if server else None,
                  client, s3.count() - client, s3.connections, error,
                  peak_rss_mb=round(rss, 1), timeout=timeout, files=len(expected))
        total = s3.count() + (server.count() if server else 0)
        row.requests_per_1000 = round(total * 1000 / max(1, len(expected)), 2)
        if cpu_before is not None and cpu_after is not None:
            row.storage_cpu_seconds = round(cpu_after - cpu_before, 2)
        if copy is not None and code == 0:
            problem = check_copy(expected, copy)
            row.checked = not problem
            row.error = row.error or problem
        self.rows.append(row)
        print(_line(row), flush=True)
        self.save()
        return row

    def ama(self, rtt: float, data: Path | None = None, label: str = "") -> None:
        root = self.tmp / f"ama{label}-{rtt:g}ms"
        root.mkdir()
        _reset(self.s3_endpoint)  # moto holds every bucket in memory: one flow's at a time
        bucket = _bucket(self.s3_endpoint)
        with WanProxy(_hostport(self.s3_endpoint), rtt_ms=rtt) as s3:
            near = {"AWS_ENDPOINT_URL": self.s3_endpoint,
                    "AMA_S3_PRESIGN_ENDPOINT_URL": s3.url} if self.server_near_storage \
                else {"AWS_ENDPOINT_URL": s3.url}
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("AMA_")},
                   **CREDENTIALS, **near,
                   "AMA_SERVER_HOME": str(root / "server"),
                   "AMA_DATABASE_URL": f"sqlite:///{root / 'ama.db'}"}
            storage = f"s3://{bucket}/ama"
            token = run_ama_server(env, "init", "--admin", "admin", "--email",
                                   "admin@example.org", "--storage", storage).stdout.strip()
            run_ama_server(env, "project", "add", PROJECT, "--storage", storage, "--no-check")
            run_ama_server(env, "project", "grant", PROJECT, "admin", "admin")
            process = start_server(env, root / "server.log")
            try:
                with WanProxy(_hostport(process.url), rtt_ms=rtt) as remote:
                    self._ama_flow(rtt, root, token, s3, remote, data or self.data, label,
                                   bucket)
            finally:
                process.stop()

    def _ama_flow(self, rtt: float, root: Path, token: str, s3: WanProxy,
                  remote: WanProxy, data: Path, label: str, bucket: str) -> None:
        ama = str(venv_bin() / "ama")
        env = tool_env(root, AMA_HOME=str(root / "home"), AMA_AUTHOR_NAME="bench",
                       AMA_AUTHOR_EMAIL="bench@example.com", **self.client_env)
        for args in (["remote", "add", "far", remote.url], ["remote", "default", "far"],
                     ["auth", "login", "--token", token, "--remote", "far"],
                     ["project", "activate", PROJECT], ["class", "init", "data"]):
            _check([ama, *args], root, env)
        work = root / "work"
        shutil.copytree(data, work / "data")
        _check([ama, "init", "data"], work, env)
        _check([ama, "add", "-q", "."], work, env)
        if label:
            self._killed_upload(rtt, root, ama, env, s3, remote, data, label, bucket)
        self.measure(rtt, "ama", "upload" + label, [ama, "upload", "-q", "-m", "far"], work,
                     env, s3, remote, data)
        other = {**env, "AMA_HOME": str(root / "other-home")}
        for args in (["remote", "add", "far", remote.url], ["remote", "default", "far"],
                     ["auth", "login", "--token", token, "--remote", "far"],
                     ["config", "set", "project.active", PROJECT],
                     *([["config", "set", "link.strategy", self.link]] if self.link else [])):
            _check([ama, *args], root, other)
        if self.clone:
            self.measure(rtt, "ama", "clone" + label,
                         [ama, "clone", "-q", "data/1", "-d", "clone"], root, other, s3,
                         remote, data, root / "clone")

    def _killed_upload(self, rtt: float, root: Path, ama: str, env: dict[str, str],
                       s3: WanProxy, remote: WanProxy, data: Path, label: str,
                       bucket: str) -> None:
        """Upload other files of the same sizes, SIGKILLed once half their bytes are
        stored in parts, then run again: the bytes the re-run sends, against the total."""
        work = root / "killed"
        work.mkdir()
        _check([ama, "class", "init", "killed"], root, env)
        (work / "data").mkdir()
        total = 0
        for path in sorted(data.rglob("*")):
            if path.is_file():
                size = path.stat().st_size
                _random_file(work / "data" / path.name, size)
                total += size
        _check([ama, "init", "killed"], work, env)
        _check([ama, "add", "-q", "."], work, env)
        # One part in flight while it is killed: with the default eight per object, every
        # part of a few hundred MiB is sent at once, and half the bytes stored means all of
        # them nearly stored. The re-run goes at the default.
        _check([ama, "config", "set", "transfer.parallelism", "1"], work, env)
        client = _client(self.s3_endpoint)
        process = subprocess.Popen([ama, "upload", "-q", "-m", "killed"], cwd=work, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stored = 0
        while process.poll() is None:
            stored = _parts_bytes(client, bucket)
            if stored >= total // 2:
                process.kill()
                break
            time.sleep(0.05)
        process.wait()
        stored = _parts_bytes(client, bucket)
        _check([ama, "config", "set", "transfer.parallelism", "8"], work, env)
        s3.reset_counts()
        row = self.measure(rtt, "ama", "resume" + label,
                           [ama, "upload", "-q", "-m", "killed"], work, env, s3, remote)
        parts = sum(1 for r in s3.requests if r.method == "PUT" and "/uploads/" in r.target
                    and "X-Amz-Signature=" in r.target)
        note = (f"killed (exit {process.returncode}) with {stored / MiB:.0f} of "
                f"{total / MiB:.0f} MiB stored in parts; the re-run sent {parts} part(s)")
        row.error = row.error or note
        print(f"      {note}", flush=True)

    def dvc_flow(self, rtt: float, data: Path | None = None, label: str = "") -> None:
        assert self.dvc
        dvc = self.dvc
        root = self.tmp / f"dvc{label}-{rtt:g}ms"
        root.mkdir()
        _reset(self.s3_endpoint)
        bucket = _bucket(self.s3_endpoint)
        with WanProxy(_hostport(self.s3_endpoint), rtt_ms=rtt) as s3:
            # dvc-s3 reads the AWS config file itself, and /dev/null is not one to it.
            empty = root / "aws-config"
            empty.touch()
            env = tool_env(root, **{**CREDENTIALS, "AWS_CONFIG_FILE": str(empty),
                                    "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                                    "DVC_NO_ANALYTICS": "1"})
            repo = root / "repo"
            repo.mkdir()
            shutil.copytree(data or self.data, repo / "data")
            for args in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"],
                         ["remote", "add", "-d", "far", f"s3://{bucket}/dvc"],
                         ["remote", "modify", "far", "endpointurl", s3.url],
                         ["add", "-q", "data"]):
                _check([dvc, *args], repo, env)
            data = data or self.data
            if self.dvc_push:
                push = self.measure(rtt, "dvc", "push" + label, [dvc, "push", "-q"], repo,
                                    env, s3, None, data)
                if push.code == -1:
                    stored = _seed_dvc_remote(self.s3_endpoint, bucket, repo / ".dvc" / "cache")
                    print(f"      dvc push{label} stopped: its remaining {stored} objects "
                          "were put into moto directly (untimed), for the pull", flush=True)
                elif push.code:
                    print(f"      dvc pull{label} not run: the push failed", flush=True)
                    return
            else:
                stored = _seed_dvc_remote(self.s3_endpoint, bucket, repo / ".dvc" / "cache")
                print(f"      dvc push{label} not timed (--no-dvc-push): {stored} objects put "
                      "into moto directly", flush=True)
            if not self.clone:
                return
            shutil.rmtree(repo / ".dvc" / "cache")
            shutil.rmtree(repo / "data")
            self.measure(rtt, "dvc", "pull" + label, [dvc, "pull", "-q"], repo, env, s3, None,
                         data, repo / "data")


def _seed_dvc_remote(endpoint: str, bucket: str, cache: Path) -> int:
    """Put the objects of DVC's ``cache`` that its remote ``s3://bucket/dvc`` lacks
    straight into moto (``endpoint``, not through a proxy): what a finished ``dvc push``
    leaves there. Returns how many were put."""
    client = _client(endpoint)
    held = {item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="dvc/") for item in page.get("Contents", [])}
    missing = [(f"dvc/{path.relative_to(cache).as_posix()}", path)
               for path in (cache / "files").rglob("*") if path.is_file()]
    missing = [(key, path) for key, path in missing if key not in held]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kp: client.put_object(Bucket=bucket, Key=kp[0],
                                                   Body=kp[1].read_bytes()), missing))
    return len(missing)


class _Moto:
    """moto's S3 server in a process of its own, on 127.0.0.1: it does the storage's work
    for both tools, and in the benchmark's process it would share one interpreter lock
    with the proxies that carry every byte."""

    def __init__(self, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                 str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{self.url}/moto-api/", timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto's server did not start; see {log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _cpu_seconds(pid: int | None) -> float | None:
    """User and system processor seconds the process ``pid`` has used so far (Linux's
    /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hostport(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return host, int(port)


def _client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(signature_version="s3v4",
                                      s3={"addressing_style": "path"}))


def _bucket(endpoint: str) -> str:
    name = f"bench-{secrets.token_hex(4)}"
    _client(endpoint).create_bucket(Bucket=name)
    return name


def _reset(endpoint: str) -> None:
    import requests

    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()


def _parts_bytes(client: Any, bucket: str) -> int:
    """The bytes stored of uploads in parts: their parts (objects of their own under
    ``uploads/``) and the large objects already joined from them."""
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if "/uploads/" in f"/{item['Key']}" or int(item["Size"]) >= DEFAULT_THRESHOLD:
                total += int(item["Size"])
    return total


def _random_file(path: Path, size: int) -> None:
    """``size`` random bytes (real bytes on the wire, none alike), written in pieces."""
    with open(path, "wb") as f:
        left = size
        while left:
            piece = min(left, 16 * MiB)
            f.write(os.urandom(piece))
            left -= piece


def make_large(root: Path, count: int, mib: int) -> Path:
    """``count`` files of ``mib`` MiB of random bytes."""
    data = root / "large"
    data.mkdir()
    for n in range(count):
        _random_file(data / f"shard{n}.bin", mib * MiB)
    return data


HEAD = (f"{'rtt':>5} {'tool':4} {'operation':12} {'seconds':>15} {'exit':>4} "
        f"{'server req':>10} {'conn':>6} {'S3 client':>9} {'S3 server':>9} {'S3 conn':>7} "
        f"{'req/1k':>7} {'RSS MB':>7} {'S3 cpu s':>8}")


def _line(row: Row) -> str:
    def n(value: int | None) -> str:
        return "-" if value is None else str(value)

    seconds = (f"> {row.timeout:.0f} (stopped)" if row.code == -1 and row.timeout
               else f"{row.seconds:.2f}")
    per = "-" if row.tool != "ama" or row.requests_per_1000 is None else \
        f"{row.requests_per_1000:.2f}"
    rss = "-" if row.peak_rss_mb is None else f"{row.peak_rss_mb:.0f}"
    cpu = "-" if row.storage_cpu_seconds is None else f"{row.storage_cpu_seconds:.1f}"
    line = (f"{row.rtt_ms:>5g} {row.tool:4} {row.operation:12} {seconds:>15} "
            f"{row.code:>4} {n(row.server_requests):>10} {n(row.server_connections):>6} "
            f"{row.s3_client_requests:>9} {row.s3_server_requests:>9} {row.s3_connections:>7} "
            f"{per:>7} {rss:>7} {cpu:>8}")
    return line + (f"  {row.error}" if row.error else "")


def _install_dvc(tmp: Path) -> str:
    venv = tmp / "tools" / "dvc"
    print("bench: installing dvc and dvc-s3 into their own virtualenv", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "dvc", "dvc-s3"],
                         capture_output=True, text=True)
    if pip.returncode:
        raise SystemExit(f"bench: pip install dvc dvc-s3 failed:\n{pip.stderr[-3000:]}")
    return str(venv / "bin" / "dvc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", default="0,20,80",
                        help="round-trip times in milliseconds, comma-separated")
    parser.add_argument("--files", type=int, default=2000, help="how many files (2,000)")
    parser.add_argument("--size", type=int, default=1024, help="bytes per file (1 KiB)")
    parser.add_argument("--folders", type=int, default=1000,
                        help="how many folders the files are spread over (1,000)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds before a command is given up")
    parser.add_argument("--dvc-timeout", type=float,
                        help="seconds before a DVC command is stopped (default: --timeout)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="where the figures go as JSON (bench/results/wan.json)")
    parser.add_argument("--dvc", help="a dvc with dvc-s3 to compare with, or 'install'")
    parser.add_argument("--dvc-push", action=argparse.BooleanOptionalAction, default=True,
                        help="time dvc push (default); without, DVC's remote is filled "
                        "straight into moto and only dvc pull is timed")
    parser.add_argument("--tools", default="ama,dvc",
                        help="which of ama and dvc to run (dvc only with --dvc)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--large", default="",
                        help="also COUNTxMiB large files (e.g. 2x300): upload, an upload "
                        "killed half-way and run again, and clone")
    parser.add_argument("--small", action=argparse.BooleanOptionalAction, default=True,
                        help="run the small files' rows (default: yes)")
    parser.add_argument("--threshold", type=int,
                        help="ama's transfer.multipart_threshold in bytes (default: its own)")
    parser.add_argument("--server-near-storage", action="store_true",
                        help="ama-server reaches S3 directly, as a server deployed beside "
                        "its bucket does; only the clients (and the URLs the server signs "
                        "for them) go through the proxy")
    parser.add_argument("--clone", action=argparse.BooleanOptionalAction, default=True,
                        help="run the clone and pull rows (default: yes; --no-clone for "
                        "files of GiBs: moto answers each ranged GET by reading the whole "
                        "object into memory, so eight ranges of a 3 GiB object at once "
                        "hold 24 GiB in the benchmark's own process)")
    parser.add_argument("--link", help="ama's link.strategy for the clone (default: its "
                        "own, a copy where the file system has no reflinks; hardlink to "
                        "compare with bench/embedded.py)")
    args = parser.parse_args(argv)
    rtts = [float(r) for r in args.rtt.split(",") if r.strip()]

    load = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="ama-bench-wan."))
    moto = _Moto(tmp / "moto.log")
    try:
        dvc = _install_dvc(tmp) if args.dvc == "install" else args.dvc
        data = make_data(tmp, args.files, args.size, args.folders)
        bench = Bench(tmp, data, moto.url, args.timeout, dvc,
                      args.dvc_timeout)
        bench.out = args.out
        bench.storage_pid = moto.process.pid
        bench.dvc_push = args.dvc_push
        bench.server_near_storage = args.server_near_storage
        bench.link = args.link
        bench.clone = args.clone
        bench.meta = {
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "load_at_start": load},
            "files": args.files, "size": args.size, "folders": min(args.folders, args.files),
            "rtt_ms": rtts, "server_near_storage": args.server_near_storage,
            "link": args.link, "clone": args.clone}
        if args.threshold:
            bench.client_env["AMA_MULTIPART_THRESHOLD"] = str(args.threshold)
        large = None
        if args.large:
            count, _, mib = args.large.partition("x")
            large = make_large(tmp, int(count), int(mib))
            print(f"large: {count} files of {mib} MiB")
        print(f"{args.files} files of {args.size} bytes in {min(args.folders, args.files)} "
              f"folders; requests counted at the proxies; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(HEAD, flush=True)
        tools = args.tools.split(",")
        for rtt in rtts:
            if "ama" in tools and args.small:
                bench.ama(rtt)
            if dvc and "dvc" in tools and args.small:
                bench.dvc_flow(rtt)
            if "ama" in tools and large is not None:
                bench.ama(rtt, large, "-large")
            if dvc and "dvc" in tools and large is not None:
                bench.dvc_flow(rtt, large, "-large")
        bench.save()
    finally:
        moto.stop()
        if args.keep:
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
