"""Installing the package puts the man pages where `man` finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a build never needs: copying the rest keeps the build from writing into the checkout.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                     "__pycache__", ".*_cache", "tests", "bench")


def _offline_build_possible() -> bool:
    """Whether this interpreter can build the wheel itself, without fetching build tools."""
    try:
        version = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    except metadata.PackageNotFoundError:
        return False
    if version >= (70, 1):  # bdist_wheel is part of setuptools from 70.1 on
        return True
    try:
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return version >= (68, 0)


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_installed_package_puts_man_pages_where_man_finds_them(tmp_path: Path) -> None:
    assert shutil.which("man"), "man is not installed: apt-get install man-db"
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels)]
    if _offline_build_possible():
        build += ["--no-build-isolation", "--no-index"]
    _run([*build, str(source)])
    (wheel,) = wheels.glob("amapy-*.whl")

    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=False)
    _run([sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install",
          "-q", "--no-deps", "--no-index", str(wheel)])

    env = {"PATH": f"{prefix / 'bin'}:/usr/bin:/bin", "HOME": os.environ["HOME"],
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MANWIDTH": "80", "MANPAGER": "cat",
           "PAGER": "cat"}
    for section, page in (("1", "ama-hash-object"), ("1", "ama"), ("5", "ama-format")):
        found = Path(_run(["man", "-w", section, page], env).stdout.strip())
        assert found == prefix / "share" / "man" / f"man{section}" / f"{page}.{section}"
        assert found.read_bytes() == (REPO / "man" / found.name).read_bytes()

    shown = _run(["man", "ama-hash-object"], env).stdout
    assert "ama hash-object [OPTIONS] [FILES]..." in shown
    assert "EXIT STATUS" in shown and "EXAMPLES" in shown



def test_man_finds_the_pages_with_the_virtualenv_on_path(tmp_path: Path) -> None:
    """The README's set-up (`make demo` or `make test`, then `.venv/bin` on PATH) lets
    `man ama-upload` find the page, though an editable install leaves man pages out."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for page, section in (("ama-upload", "1"), ("ama-format", "5"), ("ama-protocol", "7")):
        found = subprocess.run(["man", "-w", page], env=env, capture_output=True, text=True)
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip().endswith(f"{page}.{section}")
