"""``ama.lock``: the asset versions a git repository uses, at the root of its work tree.

TOML, one ``[[asset]]`` table per checkout, sorted by path, every value a string, written
byte-for-byte the same for the same content so that diffs and merges show only what changed
(see ama-format(5))::

    format = "ama-lock/1"

    [[asset]]
    path = "data/train"
    name = "imagenet-subsets/3"
    version = "0.0.2"
    manifest = "5c0e…"
    remote = "local"
    project = "default"

``path`` is the folder of the work tree the asset is checked out in (relative, ``/``
separated); ``remote`` is the remote's configured name and ``project`` the project there.
An asset that was never uploaded has the name ``<class>/temp_<random>``, the version
``temp_`` and no ``manifest``: it can be committed, but not pushed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ama.plumbing.errors import BadInput
from ama.plumbing.head import TEMP_PREFIX, TEMP_VERSION
from ama.plumbing.objects import CLASS_NAME_RE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LOCK_FILE = "ama.lock"
LOCK_FORMAT = "ama-lock/1"
HEADER = (
    "# The asset versions this repository uses; see ama-format(5).\n"
    "# Change it with 'ama git add' and 'ama git remove'; 'ama git sync' checks them out.\n"
)
_FIELDS = ("path", "name", "version", "manifest", "remote", "project")
_HEX = set("0123456789abcdef")


class BadLock(BadInput):
    """An ``ama.lock`` that is not what ama writes."""


def _fix_hint(where: str) -> str:
    return (f"fix {where} by hand (see ama-format(5)), or take a good one from git: "
            f"git checkout HEAD -- {LOCK_FILE}")


def check_path(path: str, where: str = LOCK_FILE) -> str:
    """Return ``path`` as the lock keeps it (relative, ``/``-separated, normalised), or raise
    :class:`BadLock` when it cannot be a checkout folder of the work tree."""
    text = path.replace(os.sep, "/")
    pure = PurePosixPath(text)
    parts = [p for p in pure.parts if p not in ("", ".")]
    problem = None
    if not parts:
        problem = "is the root of the work tree"
    elif pure.is_absolute():
        problem = "is absolute"
    elif ".." in parts:
        problem = "leaves the work tree ('..')"
    elif parts[0] == ".git":
        problem = "is inside .git"
    elif any(c in text for c in "\n\r\0"):
        problem = "holds a newline or NUL"
    if problem:
        raise BadLock(f"the checkout folder {path!r} in {where} {problem}",
                      "use a folder inside the git work tree, such as data/train")
    return "/".join(parts)


@dataclass(frozen=True)
class LockEntry:
    """One asset checked out in the work tree (see the module docstring)."""

    path: str
    class_name: str
    asset: str
    version: str
    manifest: str | None = None
    remote: str = "local"
    project: str = "default"

    @property
    def name(self) -> str:
        return f"{self.class_name}/{self.asset}"

    @property
    def is_temp(self) -> bool:
        return self.asset.startswith(TEMP_PREFIX)

    @property
    def ref(self) -> str:
        """``<class>/<ordinal>/<version>``, what ``ama clone`` takes (the bare name for a
        temp asset)."""
        return self.name if self.is_temp else f"{self.name}/{self.version}"

    def to_toml(self) -> dict[str, str]:
        data = {"path": self.path, "name": self.name, "version": self.version,
                "manifest": self.manifest, "remote": self.remote, "project": self.project}
        return {k: v for k, v in data.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "version": self.version,
                "manifest": self.manifest, "remote": self.remote, "project": self.project,
                "temp": self.is_temp}

    @classmethod
    def from_toml(cls, value: Any, where: str, number: int) -> LockEntry:
        what = f"[[asset]] number {number} of {where}"
        if not isinstance(value, dict):
            raise BadLock(f"{what} is not a table", _fix_hint(where))
        unknown = sorted(set(value) - set(_FIELDS))
        if unknown:
            raise BadLock(f"{what} has unknown keys: {', '.join(unknown)}", _fix_hint(where))
        for key in _FIELDS:
            if key == "manifest" and key not in value:
                continue
            if not isinstance(value.get(key), str):
                raise BadLock(f"{what} needs {key} = \"…\" (a string)", _fix_hint(where))
        path = check_path(value["path"], where)
        name = value["name"]
        cls_name, _, asset = name.partition("/")
        temp = asset.startswith(TEMP_PREFIX)
        if not CLASS_NAME_RE.match(cls_name) or not (asset.isdigit() or temp) or "/" in asset:
            raise BadLock(f"{what}: name {name!r} is not <class>/<ordinal>", _fix_hint(where))
        version = value["version"]
        manifest = value.get("manifest")
        if temp:
            if version != TEMP_VERSION or manifest is not None:
                raise BadLock(f"{what}: the never-uploaded asset {name} has version "
                              f"{TEMP_VERSION!r} and no manifest", _fix_hint(where))
        else:
            numbers = version.split(".")
            if len(numbers) != 3 or not all(n.isdigit() and (n == "0" or n[0] != "0")
                                            for n in numbers):
                raise BadLock(f"{what}: version {version!r} of {name} is not "
                              "<major>.<minor>.<patch>", _fix_hint(where))
            if manifest is None or len(manifest) != 64 or not set(manifest) <= _HEX:
                raise BadLock(f"{what}: {name} {version} needs its manifest id (64 hex "
                              "characters)", _fix_hint(where))
        for key in ("remote", "project"):
            if not CLASS_NAME_RE.match(value[key]):
                raise BadLock(f"{what}: {key} {value[key]!r} is not a valid name",
                              _fix_hint(where))
        return cls(path=path, class_name=cls_name, asset=asset, version=version,
                   manifest=manifest, remote=value["remote"], project=value["project"])


@dataclass(frozen=True)
class Lock:
    """The entries of an ``ama.lock``, sorted by path, no two at or inside the same folder."""

    entries: tuple[LockEntry, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.entries, key=lambda e: e.path.encode("utf-8")))
        object.__setattr__(self, "entries", ordered)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, path: str) -> LockEntry | None:
        path = check_path(path)
        for entry in self.entries:
            if entry.path == path:
                return entry
        return None

    def with_entry(self, entry: LockEntry) -> Lock:
        """A lock with ``entry`` added, or replacing the one at its path. Raises
        :class:`BadLock` when it would sit inside another checkout or hold one."""
        for other in self.entries:
            if other.path == entry.path:
                continue
            inner, outer = sorted((other.path, entry.path), key=len, reverse=True)
            if inner.startswith(outer + "/"):
                raise BadLock(f"the checkout {entry.path} would overlap the checkout "
                              f"{other.path} of {other.name}",
                              "choose a folder outside every other checkout with --path")
        return Lock(tuple(e for e in self.entries if e.path != entry.path) + (entry,))

    def without(self, path: str) -> Lock:
        path = check_path(path)
        return Lock(tuple(e for e in self.entries if e.path != path))

    def serialize(self) -> bytes:
        import tomli_w

        data: dict[str, Any] = {"format": LOCK_FORMAT}
        if self.entries:
            data["asset"] = [e.to_toml() for e in self.entries]
        return (HEADER + "\n" + tomli_w.dumps(data)).encode("utf-8")

    @classmethod
    def deserialize(cls, data: bytes, where: str = LOCK_FILE) -> Lock:
        """Parse ``data``; raise :class:`BadLock` naming ``where`` and what is wrong,
        including the conflict markers a failed git merge leaves."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadLock(f"{where} is not UTF-8 text", _fix_hint(where)) from None
        if "\n<<<<<<< " in "\n" + text:
            raise BadLock(f"{where} holds git merge conflict markers",
                          f"keep one version of each conflicting [[asset]], then "
                          f"'git add {LOCK_FILE}' and 'ama git sync'")
        try:
            value = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise BadLock(f"{where} is not valid TOML: {e}", _fix_hint(where)) from None
        if value.get("format") != LOCK_FORMAT:
            raise BadLock(f"{where} is not an {LOCK_FORMAT} file (format = "
                          f"{value.get('format')!r})", _fix_hint(where))
        unknown = sorted(set(value) - {"format", "asset"})
        if unknown:
            raise BadLock(f"{where} has unknown keys: {', '.join(unknown)}", _fix_hint(where))
        tables = value.get("asset", [])
        if not isinstance(tables, list):
            raise BadLock(f"{where}: asset must be an array of [[asset]] tables",
                          _fix_hint(where))
        lock = cls()
        for number, table in enumerate(tables, 1):
            entry = LockEntry.from_toml(table, where, number)
            if lock.get(entry.path) is not None:
                raise BadLock(f"{where} names the checkout {entry.path} twice",
                              _fix_hint(where))
            lock = lock.with_entry(entry)
        return lock

    @classmethod
    def read(cls, root: Path) -> Lock:
        """The lock at the root of a work tree (empty when there is none)."""
        path = root / LOCK_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        return cls.deserialize(data, str(path))

    def write(self, root: Path) -> None:
        """Replace ``root/ama.lock`` atomically."""
        path = root / LOCK_FILE
        temp = root / f".{LOCK_FILE}.{os.getpid()}.tmp"
        temp.write_bytes(self.serialize())
        os.replace(temp, path)


def entry_from_head(path: str, head: Any) -> LockEntry:
    """The lock entry for a checkout at ``path`` whose ``.ama/HEAD`` is ``head``."""
    return LockEntry(path=check_path(path), class_name=head.class_name, asset=head.asset,
                     version=head.version, manifest=head.manifest, remote=head.remote,
                     project=head.project)


__all__ = ["BadLock", "LOCK_FILE", "LOCK_FORMAT", "Lock", "LockEntry", "check_path",
           "entry_from_head"]
