"""The asset store (``$AMA_HOME``, default ``~/.ama``): the machine-wide object database,
refs and settings that every asset directory on this machine shares (docs/design.md §3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.refs import RefStore


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the asset store's folder: ``$AMA_HOME``, else ``~/.ama``."""
    environ = os.environ if environ is None else environ
    home = environ.get("AMA_HOME")
    if home:
        return Path(home).absolute()
    return Path(environ.get("HOME") or Path.home()) / ".ama"


class Store:
    """The object database and refs under one asset store folder."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self.objects = FileObjectDatabase(self.home / "objects")
        self.refs = RefStore(self.home)

    @classmethod
    def open(cls, environ: Mapping[str, str] | None = None) -> Store:
        return cls(home_dir(environ))
