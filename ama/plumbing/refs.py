"""Refs: names that point at object ids, moved only by compare-and-swap under a lock file.

A ref is a file ``<root>/<name>`` holding ``<id>\\n``, or ``ref: <other name>\\n`` for a
symbolic ref. An update takes ``<name>.lock`` (:class:`~ama.plumbing.lock.Lock`), compares
the current value with the expected old one, and replaces the ref durably while it holds the
lock. A lock left by a process that died is broken with a warning; a live holder is named in
the error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from ama.plumbing.durable import fsync_dir
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.hashing import is_id
from ama.plumbing.lock import Lock, Locked, pid_alive  # noqa: F401 - pid_alive re-exported

ZERO_ID = "0" * 64
SYMREF_PREFIX = "ref: "
MAX_SYMREF_DEPTH = 5

_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class InvalidRefName(BadInput):
    """A ref name that breaks the naming rules."""


class RefConflict(AmaError):
    """The ref did not hold the expected old value: someone else moved it first."""


class RefLocked(Locked):
    """Another process holds the ref's lock."""


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
"""Pass as ``old`` to update a ref whatever it holds (still under its lock)."""


def check_ref_name(name: str) -> str:
    """Return ``name`` if it is a valid ref name (git's check-ref-format rules)."""
    problem = None
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        problem = "it must be non-empty components separated by single '/'"
    elif _BAD_REF_CHARS.search(name):
        problem = "it cannot contain spaces, control characters or any of ~ ^ : ? * [ \\"
    elif ".." in name or "@{" in name:
        problem = "it cannot contain '..' or '@{'"
    else:
        for part in name.split("/"):
            if part.startswith(".") or part.endswith(".lock") or part.endswith("."):
                problem = f"component {part!r} cannot start with '.' or end with '.' or '.lock'"
                break
    if problem:
        raise InvalidRefName(f"invalid ref name {name!r}: {problem}")
    return name


class RefStore:
    """The refs below ``root``; ``names`` restricts which top-level names it holds."""

    def __init__(self, root: str | os.PathLike[str], prefix: str = "refs/") -> None:
        self.root = Path(root)
        self.prefix = prefix

    def _path(self, name: str) -> Path:
        check_ref_name(name)
        if not (name.startswith(self.prefix) or name == self.prefix.rstrip("/")):
            raise InvalidRefName(f"invalid ref name {name!r}: it must start with {self.prefix!r}")
        return self.root / name

    def read(self, name: str) -> str | None:
        """Return the raw value of ``name`` (an id or ``ref: <name>``), or None if unset."""
        try:
            value = self._path(name).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return value

    def iter(self) -> Iterator[tuple[str, str]]:
        """Yield ``(name, raw value)`` for every ref, sorted by name."""
        base = self.root / self.prefix.rstrip("/")
        found: list[tuple[str, str]] = []
        if base.is_file():
            found.append((self.prefix.rstrip("/"), base.read_text().strip()))
        elif base.is_dir():
            for dirpath, _dirs, files in os.walk(base):
                for fname in files:
                    if fname.endswith(".lock") or fname.startswith("."):
                        continue  # locks, and temp files a killed writer left
                    full = Path(dirpath) / fname
                    found.append((full.relative_to(self.root).as_posix(), full.read_text().strip()))
        return iter(sorted(found))

    def update(self, name: str, new: str, old: str | None | _Any) -> None:
        """Set ``name`` to ``new`` if it currently holds ``old``.

        ``old`` is the expected id, None (or the zero id) for "must not exist yet", or
        :data:`ANY`. ``new`` may be an id or ``ref: <name>``. Raises :class:`RefConflict`
        when the current value differs and :class:`RefLocked` when the lock is taken.
        """
        path = self._path(name)
        if not (is_id(new) or new.startswith(SYMREF_PREFIX)):
            raise BadInput(f"{new!r} is not an object id")
        if new.startswith(SYMREF_PREFIX):
            check_ref_name(new[len(SYMREF_PREFIX):])
        with self._lock(name, path) as lock:
            self._check_old(name, old)
            lock.commit((new + "\n").encode())

    def delete(self, name: str, old: str | None | _Any) -> None:
        """Remove ``name`` if it currently holds ``old`` (see :meth:`update`)."""
        path = self._path(name)
        with self._lock(name, path):
            if self.read(name) is None:
                raise NotFound(f"ref {name} does not exist")
            self._check_old(name, old)
            path.unlink()
            fsync_dir(path.parent)

    def _check_old(self, name: str, old: str | None | _Any) -> None:
        if old is ANY:
            return
        current = self.read(name)
        expected = None if old in (None, ZERO_ID) else old
        if current != expected:
            want = "not to exist" if expected is None else f"to be {expected}"
            have = "it does not exist" if current is None else f"it is {current}"
            raise RefConflict(
                f"ref {name} was expected {want}, but {have}",
                "someone else moved it: read it again and retry with its current value",
            )

    @staticmethod
    def _lock(name: str, path: Path) -> Lock:
        return Lock(path, f"ref {name}", RefLocked)
