"""``ama add URL``: files read straight from moto's S3, fake-gcs-server and a web server on
127.0.0.1, through the installed ``ama``, then uploaded and cloned."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from blake3 import blake3

from tests.e2e.test_lifecycle import AMA, ama, files


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its name
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A web server on 127.0.0.1 serving the folder tmp_path/site: (its URL, the folder)."""
    site = tmp_path / "site"
    site.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def asset_dir(tmp_path: Path) -> Path:
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    return m


def test_add_from_s3_gcs_and_the_web_then_upload_and_clone(
        tmp_path: Path, s3_bucket: object, gcs_bucket: object,
        web: tuple[str, Path]) -> None:
    s3 = s3_bucket.client  # type: ignore[attr-defined]
    s3_name = s3_bucket.name  # type: ignore[attr-defined]
    big = os.urandom(3 << 20)  # more than one read of a stream, and a multi-window hash
    s3.put_object(Bucket=s3_name, Key="exports/2026/train.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket=s3_name, Key="exports/2026/weights.bin", Body=big)
    s3.put_object(Bucket=s3_name, Key="other/x", Body=b"not wanted")
    gcs = gcs_bucket.client.bucket(gcs_bucket.name)  # type: ignore[attr-defined]
    gcs.blob("images/a.png").upload_from_string(b"png a")
    gcs.blob("images/deep/b.png").upload_from_string(b"png b")
    url, site = web
    (site / "labels.json").write_text('{"cat": 1}\n')
    m = asset_dir(tmp_path)
    added = json.loads(ama("add", "--json", f"s3://{s3_name}/exports/2026/weights.bin",
                           cwd=m).stdout)
    assert (added["new"], added["bytes"]) == (["weights.bin"], len(big))
    added = json.loads(ama("add", "--json", "--dest", "raw", f"s3://{s3_name}/exports/",
                           f"gs://{gcs_bucket.name}/images/",  # type: ignore[attr-defined]
                           f"{url}/labels.json", cwd=m).stdout)
    assert added["new"] == ["raw/2026/train.csv", "raw/2026/weights.bin", "raw/a.png",
                            "raw/deep/b.png", "raw/labels.json"]
    expected = {"weights.bin": big, "raw/2026/train.csv": b"a,b\n1,2\n",
                "raw/2026/weights.bin": big, "raw/a.png": b"png a", "raw/deep/b.png": b"png b",
                "raw/labels.json": b'{"cat": 1}\n'}
    assert files(m) == expected
    # Staged like any file: nothing left to add, and the store holds each under its id.
    status = json.loads(ama("status", "--json", cwd=m).stdout)
    assert sorted(status["staged"]["new"]) == sorted(expected)
    assert (status["modified"], status["deleted"], status["untracked"]) == ([], [], [])
    store = Path(os.environ["AMA_HOME"]) / "objects"
    oid = blake3(big).hexdigest()
    assert (store / oid[:2] / oid[2:]).read_bytes() == big
    # Adding the same URL again changes nothing; a changed object is staged as modified.
    again = json.loads(ama("add", "--json", f"s3://{s3_name}/exports/2026/weights.bin",
                           cwd=m).stdout)
    assert (again["new"], again["modified"]) == ([], [])
    (site / "labels.json").write_text('{"cat": 2}\n')
    again = json.loads(ama("add", "--json", "--dest", "raw", f"{url}/labels.json",
                           cwd=m).stdout)
    assert again["modified"] == ["raw/labels.json"]
    expected["raw/labels.json"] = b'{"cat": 2}\n'
    ama("upload", "-m", "from buckets", cwd=m)
    ama("clone", "ml-models/1", "-d", "copy", cwd=tmp_path)
    assert files(tmp_path / "copy") == expected


@pytest.mark.parametrize("where", ["labels.json", "raw"])
def test_a_file_in_the_way_is_refused_before_any_download(tmp_path: Path,
                                                          web: tuple[str, Path],
                                                          where: str) -> None:
    url, site = web
    (site / "labels.json").write_text("new\n")
    m = asset_dir(tmp_path)
    (m / where).write_text("mine, not staged\n")  # at the file, or where its folder goes
    dest = ["--dest", "raw"] if where == "raw" else []
    done = ama("add", f"{url}/labels.json", *dest, cwd=m, code=2)
    assert f"\n  {where}\n" in done.stderr and "--dest" in done.stderr
    assert (m / where).read_text() == "mine, not staged\n"
    assert json.loads(ama("status", "--json", cwd=m).stdout)["staged"]["new"] == []


def test_local_paths_and_urls_in_one_command(tmp_path: Path, web: tuple[str, Path]) -> None:
    url, site = web
    (site / "labels.json").write_text("web\n")
    m = asset_dir(tmp_path)
    (m / "conf").mkdir()
    (m / "conf" / "a.yaml").write_text("a: 1\n")
    added = json.loads(ama("add", "--json", "a.yaml", f"{url}/labels.json",
                           cwd=m / "conf").stdout)
    # A URL's file lands in the current folder, as a path names a file there.
    assert added["new"] == ["conf/a.yaml", "conf/labels.json"]
    assert (m / "conf" / "labels.json").read_text() == "web\n"
    done = ama("add", "--dest", "x", "a.yaml", cwd=m / "conf", code=2)
    assert "--dest places files read from URLs" in done.stderr


class _Liar(SimpleHTTPRequestHandler):
    """Announces 1 MiB more than it sends, then hangs up: a download broken off."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(3 << 20))
        self.end_headers()
        self.wfile.write(b"x" * (2 << 20))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its name
        pass


def test_a_broken_download_stages_and_stores_nothing(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Liar)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        m = asset_dir(tmp_path)
        done = ama("add", f"http://127.0.0.1:{server.server_address[1]}/big.bin", cwd=m,
                   code=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert "big.bin: the download broke off" in done.stderr
    assert "hint: run the command again" in done.stderr
    assert files(m) == {}
    objects = Path(os.environ["AMA_HOME"]) / "objects"
    assert [p for p in objects.rglob("*") if p.is_file()] == []
    assert json.loads(ama("status", "--json", cwd=m).stdout)["staged"]["new"] == []


@pytest.mark.parametrize(("path", "code", "words"), [
    ("missing/key.csv", 3, "no such object"),
    ("exports", 3, "add s3://"),  # a prefix without its trailing /: the hint says so
    ("nothing/", 3, "no object under it"),
])
def test_missing_s3_objects_are_clear_errors(tmp_path: Path, s3_bucket: object, path: str,
                                             code: int, words: str) -> None:
    name = s3_bucket.name  # type: ignore[attr-defined]
    s3_bucket.client.put_object(Bucket=name, Key="exports/a", Body=b"a")  # type: ignore[attr-defined]
    m = asset_dir(tmp_path)
    done = ama("add", f"s3://{name}/{path}", cwd=m, code=code)
    assert done.stderr.startswith("ama: error: ") and words in done.stderr
    assert "hint: " in done.stderr
    assert files(m) == {}


def test_a_missing_bucket_is_a_clear_error(tmp_path: Path, s3_bucket: object) -> None:
    m = asset_dir(tmp_path)
    done = ama("add", "s3://no-such-bucket-here/a.csv", cwd=m, code=3)
    assert "no-such-bucket-here does not exist" in done.stderr
    assert "hint: check the bucket's name" in done.stderr


def test_missing_credentials_are_a_clear_error(tmp_path: Path, s3_bucket: object) -> None:
    name = s3_bucket.name  # type: ignore[attr-defined]
    s3_bucket.client.put_object(Bucket=name, Key="a.csv", Body=b"a")  # type: ignore[attr-defined]
    m = asset_dir(tmp_path)
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    done = subprocess.run([AMA, "add", f"s3://{name}/a.csv"], cwd=m, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    assert f"ama: error: s3://{name}/a.csv: access refused: no credentials" in done.stderr
    assert "hint: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE" in done.stderr
    assert files(m) == {}


def test_missing_gcs_credentials_are_a_clear_error(tmp_path: Path) -> None:
    m = asset_dir(tmp_path)
    # No emulator, no key, no gcloud login, and no probe of a metadata server.
    env = {k: v for k, v in os.environ.items()
           if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")}
    env["NO_GCE_CHECK"] = "true"
    env["CLOUDSDK_CONFIG"] = str(tmp_path / "gcloud")
    done = subprocess.run([AMA, "add", "gs://some-bucket/a.csv"], cwd=m, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    assert "ama: error: gs://some-bucket/a.csv: access refused" in done.stderr
    assert "hint: run 'gcloud auth application-default login'" in done.stderr


@pytest.mark.parametrize(("name", "code", "words"), [
    ("gone.csv", 3, "the server answered 404"),
    ("", 2, "names no file"),
])
def test_web_errors_are_clear(tmp_path: Path, web: tuple[str, Path], name: str, code: int,
                              words: str) -> None:
    url, _site = web
    m = asset_dir(tmp_path)
    done = ama("add", f"{url}/{name}", cwd=m, code=code)
    assert done.stderr.startswith("ama: error: ") and words in done.stderr
    assert "hint: " in done.stderr


def test_an_unreachable_web_server_is_a_clear_error(tmp_path: Path, web: tuple[str, Path]
                                                    ) -> None:
    url, _site = web
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    m = asset_dir(tmp_path)
    done = ama("add", f"http://127.0.0.1:{port}/a.csv", cwd=m, code=5)
    assert f"http://127.0.0.1:{port}/a.csv is unreachable" in done.stderr


def _high_water(pid: int, marker: str) -> int:
    """The peak resident memory of process ``pid`` so far, in bytes: 0 once it is gone, and
    until its command line holds ``marker`` (before its exec it still shares or copies
    this test process's memory)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if marker.encode() not in f.read():
                return 0
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def test_a_large_web_source_is_streamed_in_bounded_memory(tmp_path: Path,
                                                          web: tuple[str, Path]) -> None:
    # 384 MiB: read whole into memory, it alone would take the peak above 300 MB.
    # (bench/sources.py adds a 3 GiB source the same way.)
    url, site = web
    added_in_bounded_memory(asset_dir(tmp_path), tmp_path, url, site)


def added_in_bounded_memory(m: Path, tmp_path: Path, url: str, site: Path,
                            *options: str) -> None:
    """``ama add --json [options] URL/big.bin`` of a sparse 384 MiB file of the web server
    ``url`` serving ``site``, into the asset directory ``m``: it adds the file whole, with
    a peak RSS under 300 MB."""
    size = 384 << 20
    with open(site / "big.bin", "wb") as f:  # sparse: zeros that cost no disk
        f.truncate(size)
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        child = subprocess.Popen([AMA, "add", "--json", *options, f"{url}/big.bin"], cwd=m,
                                 stdout=stdout, stderr=stderr)
    # The child's own peak: the high-water mark of its memory (VmHWM), read while it runs.
    # Not ru_maxrss from wait4, which keeps the peak of the process before its exec: a
    # copy of this test process, hundreds of MB late in a full run.
    peak = 0
    while child.poll() is None:
        peak = max(peak, _high_water(child.pid, f"{url}/big.bin"))
        time.sleep(0.02)
    assert child.returncode == 0, err.read_text()
    added = json.loads(out.read_text())
    assert (added["new"], added["bytes"]) == (["big.bin"], size)
    assert (m / "big.bin").stat().st_size == size
    assert peak > 10_000_000  # it was read: a Python process holds more than this
    print(f"peak RSS of ama add {' '.join(options)} of {size >> 20} MiB over HTTP: "
          f"{peak / 1e6:.0f} MB")
    assert peak < 300_000_000


def test_a_download_draws_its_bytes_on_a_terminal(tmp_path: Path,
                                                  web: tuple[str, Path]) -> None:
    from tests.e2e.test_progress_tty import run

    url, site = web
    (site / "big.bin").write_bytes(os.urandom(5 << 20))
    m = asset_dir(tmp_path)
    code, _out, drawn = run(["add", f"{url}/big.bin"], m, tty=True)
    assert code == 0
    assert b"Downloading" in drawn and b"5.0 MiB" in drawn and b"1/1 files" in drawn
