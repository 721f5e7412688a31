"""Building the package as users install it: a wheel of this checkout, built offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

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


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(tmp_path: Path) -> Path:
    """Build a wheel of this checkout under ``tmp_path``; return its path."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    wheels = tmp_path / "wheels"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels)]
    if _offline_build_possible():
        build += ["--no-build-isolation", "--no-index"]
    run([*build, str(source)])
    (wheel,) = wheels.glob("amapy-*.whl")
    return wheel
