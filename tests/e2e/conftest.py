"""Running ``ama`` two ways: the installed console script in a subprocess, and click's
CliRunner in this process. Every plumbing test runs both."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "surrogateescape")

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def installed(name: str = "ama") -> str:
    """The path of an installed console script of this environment."""
    found = shutil.which(name, path=os.pathsep.join(
        [str(Path(sys.prefix) / "bin"), os.environ.get("PATH", "")]))
    assert found, f"{name} is not installed in {sys.prefix}/bin"
    return found


class Ama:
    """Call ``ama`` with a working directory, extra environment and stdin."""

    def __init__(self, mode: str, cwd: Path) -> None:
        self.mode = mode
        self.cwd = cwd

    def __call__(self, *args: str, input: bytes | str | None = None, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> Result:
        cwd = cwd or self.cwd
        data = input.encode("utf-8", "surrogateescape") if isinstance(input, str) else input
        if self.mode == "installed":
            import subprocess

            proc = subprocess.run([installed(), *args], input=data or b"", cwd=cwd,
                                  env={**os.environ, **(env or {})}, capture_output=True,
                                  timeout=60)
            return Result(proc.returncode, proc.stdout, proc.stderr.decode())
        from click.testing import CliRunner

        from ama.cli.main import cli

        old = os.getcwd()
        os.chdir(cwd)
        try:
            result = CliRunner().invoke(cli, list(args), input=data, env=dict(env or {}),
                                        catch_exceptions=False)
        finally:
            os.chdir(old)
        return Result(result.exit_code, result.stdout_bytes, result.stderr)

    def ok(self, *args: str, **kwargs: object) -> str:
        """Run and require exit 0 and a quiet stderr; return stdout without its last newline."""
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.code == 0, f"ama {' '.join(args)} exited {result.code}: {result.err}"
        assert "error" not in result.err
        return result.text.removesuffix("\n")

    def fails(self, code: int, *args: str, **kwargs: object) -> Result:
        """Run and require exit ``code`` with an ``ama: error:`` line (for ama's own errors)."""
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.code == code, (
            f"ama {' '.join(args)} exited {result.code}, not {code}: {result.err}")
        return result


@pytest.fixture(params=["installed", "clirunner"])
def ama(request: pytest.FixtureRequest, tmp_path: Path) -> Ama:
    """``ama`` run in the asset directory ``tmp_path/asset`` (it has an empty ``.ama/``)."""
    asset = tmp_path / "asset"
    (asset / ".ama").mkdir(parents=True)
    return Ama(request.param, asset)
