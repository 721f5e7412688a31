"""``make docs``: the Python API's reference builds from the docstrings without a warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_docs_builds_the_api_reference_without_warnings(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    # -o: the virtualenv running the tests is the installed one; make must not rebuild it.
    result = subprocess.run(
        [shutil.which("make") or "make", "-C", str(ROOT), "-o", f"{venv}/bin/.installed",
         "docs", f"VENV={venv}", f"DOCS_DIR={tmp_path / 'api'}"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "api" / "ama" / "api.html").read_text()
    assert "Version" in page and "read_range" in page and "NOT hashed" in page
    assert (tmp_path / "api" / "ama" / "filesystem.html").exists()
    assert "Warning" not in result.stderr
