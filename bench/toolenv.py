"""The environment every benchmarked command runs in: the virtualenv's tools first on PATH,
HOME and git's config inside the benchmark's temp folder, fixed author names."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def venv_bin() -> Path:
    """The folder of the Python running the benchmark (where ``ama`` is installed)."""
    return Path(os.path.abspath(sys.executable)).parent


def tool_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Return the environment for commands run by a benchmark working in ``tmp``."""
    return {
        "PATH": f"{venv_bin()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(tmp / "gitconfig"),
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
        **extra,
    }
