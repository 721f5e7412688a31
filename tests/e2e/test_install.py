"""`pip install amapy` brings the client and the embedded remote, and nothing of the server."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.e2e.wheel import build_wheel

SERVER_ONLY = ("falcon", "gunicorn", "psycopg", "boto3", "google-cloud-storage")


@pytest.mark.slow
def test_the_client_installs_and_works_without_the_server_packages(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=False)
    python = str(prefix / "bin" / "python")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    listed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "list",
                             "--format=freeze"], capture_output=True, text=True, check=True)
    installed = {line.split("==")[0].lower() for line in listed.stdout.split()}
    assert "amapy" in installed
    assert not installed & set(SERVER_ONLY), installed & set(SERVER_ONLY)

    # The newcomer's flow on the embedded file:// remote, with that install alone.
    env = {"PATH": f"{prefix / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "AMA_HOME": str(tmp_path / "home" / ".ama"), "LANG": "C.UTF-8",
           "AMA_AUTHOR_NAME": "Test User", "AMA_AUTHOR_EMAIL": "test@example.org"}

    def ama(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(prefix / "bin" / "ama"), *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    m = tmp_path / "m"
    (m / "conf").mkdir(parents=True)
    (m / "weights.bin").write_bytes(os.urandom(200_000))
    (m / "conf" / "train.yaml").write_text("lr: 0.1\n")
    ama("class", "init", "ml-models", cwd=tmp_path)
    ama("init", "ml-models", cwd=m)
    ama("add", ".", cwd=m)
    ama("upload", "-m", "first", cwd=m)
    ama("clone", "ml-models/1", "copy", cwd=tmp_path)
    for name in ("weights.bin", "conf/train.yaml"):
        assert (tmp_path / "copy" / name).read_bytes() == (m / name).read_bytes()
    # The report's template ships in the wheel, and its library comes with the client.
    ama("report", "-o", str(tmp_path / "report.html"), cwd=m)
    assert "train.yaml" in (tmp_path / "report.html").read_text(encoding="utf-8")
    # Reading a bucket goes through the server's storage backends: it says what to install.
    for url in ("s3://bucket/a.csv", "gs://bucket/a.csv"):
        done = ama("add", url, cwd=m, code=2)
        assert "sources needs the cloud SDKs" in done.stderr
        assert "pip install 'amapy[server]'" in done.stderr
    # The server's command says what to install instead of failing on an import.
    server = subprocess.run([str(prefix / "bin" / "ama-server"), "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert server.returncode == 2
    assert "pip install 'amapy[server]'" in server.stderr
