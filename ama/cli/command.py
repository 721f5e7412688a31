"""What every ``ama`` command shares: access to the store and the asset directory, and
reading and writing records. The help sections live in :mod:`ama.commandline`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from functools import cached_property
from typing import Any

from ama.commandline import (  # noqa: F401 - the command modules import these from here
    EXIT_CODES,
    AmaCommand,
    AmaCommandGroup,
    command,
    group,
    positional_or_option,
)


class Env:
    """The store, the asset directory and revision names, opened on first use."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        self.environ = dict(os.environ) if environ is None else environ

    @cached_property
    def store(self):  # type: ignore[no-untyped-def]
        from ama.plumbing.store import Store

        return Store.open(self.environ)

    @cached_property
    def asset_dir(self):  # type: ignore[no-untyped-def]
        from ama.plumbing.worktree import AssetDir

        return AssetDir.find(environ=self.environ)

    def head_refs(self):  # type: ignore[no-untyped-def]
        from ama.plumbing.head import HeadRef

        return HeadRef(self.asset_dir.meta)

    def resolve(self, text: str) -> str:
        """Return the object id that ``text`` names (see ama-rev-parse(1))."""
        from ama.plumbing.revision import resolve

        return resolve(self.store.objects, self.store.refs, self.head_refs, text)


def write_records(records: Iterable[str], nul: bool = False) -> None:
    """Write records to stdout, each ended by a newline, or by NUL with ``nul``."""
    end = "\0" if nul else "\n"
    out = sys.stdout
    buffer: list[str] = []
    for record in records:
        buffer.append(record)
        buffer.append(end)
        if len(buffer) >= 8192:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))
    out.flush()


def read_records(stream: Any, nul: bool = False) -> Iterable[str]:
    """Yield the records of a text ``stream``: lines, or NUL-terminated with ``nul``."""
    if nul:
        data = stream.read()
        parts = data.split("\0")
        if parts and parts[-1] == "":
            parts.pop()
        yield from parts
    else:
        for line in stream:
            line = line.rstrip("\n")
            if line:
                yield line


def shown(text: str) -> str:
    """``text`` with every character that is not printable (but for line feeds and tabs)
    written as its escape, ``\\x1b`` for an ESC: what others wrote (a version's message,
    an asset's title, a remote's error) cannot drive the user's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else
                   ascii(c)[1:-1] for c in text)
