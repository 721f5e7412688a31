"""Commands run in the test's own process, for set-up that is not what a test is about.

A process per set-up command costs its imports, a second each on a loaded machine, dozens
of them per test; what a test checks still runs the installed ``ama`` or ``ama-server``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click


def in_process(program: click.Command, env: Mapping[str, str | None], cwd: Path,
               *args: str) -> str:
    """Run ``program ARGS`` (``ama``'s or ``ama-server``'s command group) in this process with
    ``env`` (a None value unsets the variable), in ``cwd``, and require exit 0; return its
    stdout."""
    from click.testing import CliRunner

    old = os.getcwd()
    os.chdir(cwd)
    try:
        done = CliRunner().invoke(program, list(args), env=env, catch_exceptions=False)
    finally:
        os.chdir(old)
    assert done.exit_code == 0, f"{' '.join(args)} exited {done.exit_code}:\n{done.output}"
    return done.stdout
