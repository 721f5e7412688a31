"""The three kinds of object (blob, tree, manifest): their values, bytes and validation rules.

Every rule of docs/design.md §2 and ama-format(5) is enforced both when a value is built and
when bytes are read, so an object that deserializes is one that would serialize to the same
bytes.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ama.plumbing.errors import AmaError, BadInput, path_list
from ama.plumbing.hashing import is_id
from ama.plumbing.jsontext import Metadata

TREE_HEADER = b"ama-tree 1\n"
# A tree holding a symbolic link has version 2, so that an ama that knows no links refuses it
# instead of writing the link's target as a file's bytes; every other tree keeps version 1 and
# so keeps its id. Both headers are the same length.
TREE_HEADER_LINKS = b"ama-tree 2\n"
# A tree holding a proxy file (its bytes at their source, see ama.plumbing.proxy) has version
# 3, for the same reason: an ama that knows no proxies must not write a descriptor as a file.
TREE_HEADER_PROXIES = b"ama-tree 3\n"
TREE_HEADERS = (TREE_HEADER, TREE_HEADER_LINKS, TREE_HEADER_PROXIES)
MANIFEST_FORMAT = "ama-manifest/1"
ENTRY_TYPES = ("blob", "exec", "link", "proxy", "tree")
MAX_LINK_TARGET_BYTES = 4095
MAX_NAME_BYTES = 255

CLASS_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
VERSION_RE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")
_ORDINAL_RE = re.compile(r"[1-9][0-9]*\Z")
_SIZE_RE = re.compile(rb"(0|[1-9][0-9]*)\Z")
_CREATED_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_FORBIDDEN_IN_NAME = ("/", "\0", "\n", "\t", "\r")


class InvalidName(BadInput):
    """A file or directory name that cannot be stored in a tree."""


class InvalidObject(BadInput):
    """Bytes or values that break the format of a tree or manifest."""


def name_problem(name: str) -> str | None:
    """Return why ``name`` cannot be a tree entry name, or None if it can."""
    if name == "":
        return "a name cannot be empty"
    if name in (".", ".."):
        return f"{name!r} is not allowed as a name"
    for ch in _FORBIDDEN_IN_NAME:
        if ch in name:
            return f"a name cannot contain {ch!r}"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "a name must be valid UTF-8"
    if len(encoded) > MAX_NAME_BYTES:
        return f"a name is at most {MAX_NAME_BYTES} bytes (this one is {len(encoded)})"
    return None


# The name of the folder in which ama keeps an asset directory's own files (HEAD, index).
RESERVED_NAME = ".ama"
# Code points HFS+ ignores in names, so that ".a\u200cma" is ".ama" there.
_IGNORED_BY_HFS = dict.fromkeys(map(ord, "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d"
                                         "\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"))


class UnsafePaths(AmaError):
    """Paths of a version that no asset directory may hold: nothing was written."""

    def __init__(self, problems: list[tuple[str, str]], what: str) -> None:
        super().__init__(
            f"{what} holds {len(problems)} path(s) that no asset directory may hold; "
            f"nothing was written:\n{path_list([f'{p}: {why}' for p, why in problems])}",
            "ask its author to upload a version without them")
        self.problems = problems


def reserved_problem(name: str) -> str | None:
    """Return why ``name`` is reserved at any depth of a version, or None if it is not.

    ``.ama`` is where ama keeps an asset directory's own files, and a folder of that name
    below the root makes its own asset directory: a version holding one would overwrite
    them, or plant one. The name is compared as the filesystems that store it compare
    names: whatever the case (macOS, Windows), ignoring trailing dots and spaces (Windows)
    and the code points HFS+ ignores.
    """
    if name.isascii():
        folded = name.rstrip(". ").lower()
    else:
        folded = name.translate(_IGNORED_BY_HFS).rstrip(". ").casefold()
    if folded == RESERVED_NAME:
        return f"{name!r} is reserved: ama keeps its own files in {RESERVED_NAME}/"
    return None


def path_problems(paths: Iterable[str]) -> list[tuple[str, str]]:
    """Return ``(path, why)`` for each ``/``-separated path whose names break the name rules
    (:func:`name_problem`) or are reserved (:func:`reserved_problem`), in the given order."""
    found = []
    good: set[str] = set()  # a folder's name comes again with each of its files
    for path in paths:
        for name in path.split("/"):
            if name in good:
                continue
            problem = name_problem(name) or reserved_problem(name)
            if problem:
                found.append((path, problem))
                break
            good.add(name)
    return found


def check_paths(paths: Iterable[str], what: str) -> None:
    """Raise :class:`UnsafePaths` listing every path of ``what`` (such as "version 0.0.1
    of models/1") that :func:`path_problems` finds, before anything is written."""
    problems = path_problems(paths)
    if problems:
        raise UnsafePaths(problems, what)


class UnsafeLink(BadInput):
    """A symbolic link whose target is not a path inside the asset."""


def link_problem(path: str, target: str) -> str | None:
    """Return why the link at ``path`` (``/``-separated, from the asset root) may not point at
    ``target``, or None if it may.

    A target is a relative, normalised path (no ``.`` or empty part, ``..`` only at its start,
    no trailing ``/``) that, read from the link's folder, stays inside the asset and crosses
    no reserved name. It need not exist. Since every link of a version obeys this, following
    any chain of them never leaves the asset.
    """
    if target == "":
        return "its target is empty"
    if "\0" in target:
        return "its target contains NUL"
    try:
        encoded = target.encode("utf-8")
    except UnicodeEncodeError:
        return "its target is not valid UTF-8"
    if len(encoded) > MAX_LINK_TARGET_BYTES:
        return f"its target is longer than {MAX_LINK_TARGET_BYTES} bytes"
    if target.startswith("/"):
        return f"its target {target!r} is absolute (it leaves the asset)"
    if posixpath.normpath(target) != target:
        return (f"its target {target!r} is not normalised "
                f"(write it as {posixpath.normpath(target)!r})")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        return f"its target {target!r} leaves the asset"
    if resolved != "." and path_problems([resolved]):
        return f"its target {target!r} is inside {RESERVED_NAME}/ or holds a name no tree may"
    return None


def link_problems(links: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return ``(path, why)`` for each ``(path, target)`` that :func:`link_problem` refuses."""
    return [(path, why) for path, target in links
            if (why := link_problem(path, target)) is not None]


def decode_link_target(data: bytes) -> str:
    """Return a link blob's bytes as its target, or raise :class:`UnsafeLink`."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeLink("a link target is not valid UTF-8") from None


def check_links(links: Iterable[tuple[str, str]], what: str) -> None:
    """Raise :class:`UnsafeLink` listing every link of ``what`` that :func:`link_problems`
    refuses, before anything is written."""
    problems = link_problems(links)
    if problems:
        raise UnsafeLink(
            f"{what} holds {len(problems)} symbolic link(s) pointing outside it; nothing was "
            f"written:\n{path_list([f'{p}: {why}' for p, why in problems])}",
            "ask its author to upload a version without them")


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid tree entry name, else raise :class:`InvalidName`."""
    problem = name_problem(name)
    if problem:
        raise InvalidName(f"invalid name {name!r}: {problem}")
    return name


@dataclass(frozen=True)
class TreeEntry:
    """One line of a tree: a blob, an executable blob, a symbolic link (a blob holding its
    target) or a subtree, with its size in bytes (a link's: its target's length)."""

    type: str
    id: str
    size: int
    name: str

    def __post_init__(self) -> None:
        if self.type not in ENTRY_TYPES:
            raise InvalidObject(f"entry {self.name!r}: unknown type {self.type!r}")
        if not is_id(self.id):
            raise InvalidObject(f"entry {self.name!r}: {self.id!r} is not an object id")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise InvalidObject(f"entry {self.name!r}: size must be a non-negative integer")
        check_name(self.name)

    @property
    def sort_key(self) -> bytes:
        return self.name.encode("utf-8")

    def serialize(self) -> bytes:
        return f"{self.type} {self.id} {self.size}\t{self.name}\n".encode()


@dataclass(frozen=True)
class Tree:
    """One directory: entries sorted by the UTF-8 bytes of their names, no two alike."""

    entries: tuple[TreeEntry, ...] = ()

    def __post_init__(self) -> None:
        previous: bytes | None = None
        for entry in self.entries:
            key = entry.sort_key
            if previous is not None:
                if key == previous:
                    raise InvalidObject(f"tree has two entries named {entry.name!r}")
                if key < previous:
                    raise InvalidObject(
                        f"tree entries are not sorted: {entry.name!r} comes after "
                        f"{previous.decode()!r}"
                    )
            previous = key

    @classmethod
    def of(cls, entries: list[TreeEntry] | tuple[TreeEntry, ...]) -> Tree:
        """Return a tree of ``entries`` in canonical order (raises on duplicate names)."""
        return cls(tuple(sorted(entries, key=lambda e: e.sort_key)))

    @property
    def size(self) -> int:
        """Total bytes of all blobs below this tree."""
        return sum(e.size for e in self.entries)

    @property
    def header(self) -> bytes:
        """``ama-tree 3`` for a tree holding a proxy, else ``ama-tree 2`` for one holding a
        link, else ``ama-tree 1``."""
        if any(e.type == "proxy" for e in self.entries):
            return TREE_HEADER_PROXIES
        if any(e.type == "link" for e in self.entries):
            return TREE_HEADER_LINKS
        return TREE_HEADER

    def serialize(self) -> bytes:
        return self.header + b"".join(e.serialize() for e in self.entries)

    @classmethod
    def deserialize(cls, data: bytes) -> Tree:
        """Parse tree bytes; raise :class:`InvalidObject` naming the first broken rule."""
        if not data.startswith(TREE_HEADERS):
            raise InvalidObject("not a tree: it does not start with 'ama-tree 1', 2 or 3")
        body = data[len(TREE_HEADER):]
        if body and not body.endswith(b"\n"):
            raise InvalidObject("tree does not end with a newline")
        entries = []
        for number, line in enumerate(body.split(b"\n")[:-1], start=2):
            entries.append(parse_entry_line(line, number))
        tree = cls(tuple(entries))
        if data[:len(TREE_HEADER)] != tree.header:
            raise InvalidObject(
                "tree header does not match its entries: 'ama-tree 3' is for, and only for, "
                "a tree holding a proxy, 'ama-tree 2' for one holding a link and no proxy")
        return tree


def parse_entry_line(line: bytes, number: int) -> TreeEntry:
    head, tab, raw_name = line.partition(b"\t")
    parts = head.split(b" ")
    if not tab or len(parts) != 3:
        raise InvalidObject(f"tree line {number}: expected '<type> <id> <size>\\t<name>'")
    kind, oid, size = parts
    if not _SIZE_RE.match(size):
        raise InvalidObject(f"tree line {number}: size {size!r} is not a canonical number")
    try:
        name = raw_name.decode("utf-8")
        return TreeEntry(kind.decode("ascii"), oid.decode("ascii"), int(size), name)
    except UnicodeDecodeError as e:
        raise InvalidObject(f"tree line {number}: not valid UTF-8") from e
    except BadInput as e:
        raise InvalidObject(f"tree line {number}: {e.message}") from e


def check_class_name(name: str) -> str:
    """Return ``name`` if it is a valid class name, else raise :class:`InvalidName`."""
    if not CLASS_NAME_RE.match(name):
        raise InvalidName(
            f"invalid class name {name!r}: use 1 to 63 of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return name


def check_version(version: str) -> str:
    """Return ``version`` if it is ``<major>.<minor>.<patch>`` without leading zeros."""
    if not VERSION_RE.match(version):
        raise InvalidName(f"invalid version {version!r}: expected e.g. 0.0.1")
    return version


def check_version_name(name: str) -> str:
    """Return ``name`` if it is ``<class>/<ordinal>/<version>``."""
    parts = name.split("/")
    if len(parts) != 3 or not _ORDINAL_RE.match(parts[1]):
        raise InvalidName(f"invalid version name {name!r}: expected <class>/<ordinal>/<version>")
    check_class_name(parts[0])
    check_version(parts[2])
    return name


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email}


@dataclass(frozen=True)
class Input:
    """A lineage link: the manifest of a version of another asset, its name and a label."""

    manifest: str
    name: str
    label: str

    def __post_init__(self) -> None:
        if not is_id(self.manifest):
            raise InvalidObject(f"input {self.name!r}: {self.manifest!r} is not a manifest id")
        check_version_name(self.name)
        if not isinstance(self.label, str):
            raise InvalidObject(f"input {self.name!r}: label must be a string")

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "manifest": self.manifest, "name": self.name}


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON bytes of ``value`` (sorted keys, no spaces, UTF-8)."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except ValueError as e:
        raise InvalidObject(f"not canonical JSON: {e}") from e


def format_created(moment: datetime) -> str:
    """Return ``moment`` as the manifest's UTC timestamp, to the second."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reject_constant(name: str) -> Any:
    raise InvalidObject(f"manifest contains {name}, which JSON does not allow")


@dataclass(frozen=True)
class Manifest:
    """The object that is a version: its tree, parents, inputs, author, time and metadata."""

    tree: str
    author: Author
    created: str
    message: str = ""
    parents: tuple[str, ...] = ()
    inputs: tuple[Input, ...] = ()
    metadata: Metadata = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not is_id(self.tree):
            raise InvalidObject(f"manifest tree {self.tree!r} is not an object id")
        for parent in self.parents:
            if not is_id(parent):
                raise InvalidObject(f"manifest parent {parent!r} is not an object id")
        if len(set(self.parents)) != len(self.parents):
            raise InvalidObject("manifest names the same parent twice")
        if [i.name for i in self.inputs] != sorted(i.name for i in self.inputs):
            raise InvalidObject("manifest inputs are not sorted by name")
        if len({i.manifest for i in self.inputs}) != len(self.inputs):
            raise InvalidObject("manifest names the same input twice")
        if not _CREATED_RE.match(self.created):
            raise InvalidObject(f"manifest time {self.created!r} is not YYYY-MM-DDTHH:MM:SSZ")
        try:
            datetime.strptime(self.created, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError as e:
            raise InvalidObject(f"manifest time {self.created!r} is not a real date") from e
        if not isinstance(self.author.name, str) or not isinstance(self.author.email, str):
            raise InvalidObject("manifest author needs a name and an email, both strings")
        if not isinstance(self.message, str):
            raise InvalidObject("manifest message must be a string")
        if not isinstance(self.metadata, dict):
            raise InvalidObject("manifest metadata must be a JSON object")
        canonical_json(self.metadata)

    @classmethod
    def create(
        cls,
        tree: str,
        author: Author,
        created: datetime,
        message: str = "",
        parents: list[str] | tuple[str, ...] = (),
        inputs: list[Input] | tuple[Input, ...] = (),
        metadata: Metadata | None = None,
    ) -> Manifest:
        """Return a manifest with inputs put in canonical order."""
        return cls(
            tree=tree,
            author=author,
            created=format_created(created),
            message=message,
            parents=tuple(parents),
            inputs=tuple(sorted(inputs, key=lambda i: i.name)),
            metadata=dict(metadata or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "tree": self.tree,
            "parents": list(self.parents),
            "inputs": [i.to_json() for i in self.inputs],
            "author": self.author.to_json(),
            "created": self.created,
            "message": self.message,
            "metadata": self.metadata,
        }

    def serialize(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def deserialize(cls, data: bytes) -> Manifest:
        """Parse manifest bytes; raise :class:`InvalidObject` unless they are canonical."""
        try:
            doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise InvalidObject(f"not a manifest: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise InvalidObject(f"not a manifest: its format is not {MANIFEST_FORMAT!r}")
        expected = {"format", "tree", "parents", "inputs", "author", "created", "message",
                    "metadata"}
        if set(doc) != expected:
            missing, extra = expected - set(doc), set(doc) - expected
            raise InvalidObject(
                "manifest fields are wrong: "
                + ", ".join([f"missing {k!r}" for k in sorted(missing)]
                            + [f"unknown {k!r}" for k in sorted(extra)])
            )
        try:
            author = doc["author"]
            if not isinstance(author, dict) or set(author) != {"name", "email"}:
                raise InvalidObject("manifest author must be {\"name\", \"email\"}")
            inputs = []
            for item in _list(doc["inputs"], "inputs"):
                if not isinstance(item, dict) or set(item) != {"manifest", "name", "label"}:
                    raise InvalidObject("each manifest input must be {manifest, name, label}")
                inputs.append(Input(item["manifest"], item["name"], item["label"]))
            manifest = cls(
                tree=doc["tree"] if isinstance(doc["tree"], str) else "",
                author=Author(author["name"], author["email"]),
                created=doc["created"] if isinstance(doc["created"], str) else "",
                message=doc["message"],
                parents=tuple(_list(doc["parents"], "parents")),
                inputs=tuple(inputs),
                metadata=doc["metadata"],
            )
        except InvalidObject:
            raise
        except BadInput as e:
            raise InvalidObject(f"manifest: {e.message}") from e
        if manifest.serialize() != data:
            raise InvalidObject("manifest is not in canonical form (sorted keys, no spaces)")
        return manifest


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidObject(f"manifest {what} must be a list")
    return value


def object_type(data: bytes) -> str:
    """Return ``tree``, ``manifest`` or ``blob`` for an object's bytes.

    A tree or manifest is recognised by its header and only if it parses; anything else is
    a blob, since a file may hold any bytes.
    """
    if data.startswith(TREE_HEADERS):
        try:
            Tree.deserialize(data)
            return "tree"
        except InvalidObject:
            return "blob"
    if data.startswith(b'{"author":') and b'"format":"ama-manifest/1"' in data:
        try:
            Manifest.deserialize(data)
            return "manifest"
        except InvalidObject:
            return "blob"
    return "blob"
