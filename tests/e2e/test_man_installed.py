"""Installing the package puts the man pages where `man` finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.e2e.wheel import REPO, build_wheel
from tests.e2e.wheel import run as _run


@pytest.mark.slow
def test_installed_package_puts_man_pages_where_man_finds_them(tmp_path: Path) -> None:
    assert shutil.which("man"), "man is not installed: apt-get install man-db"
    wheel = build_wheel(tmp_path)
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
