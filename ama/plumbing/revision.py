"""Revision names: how a command-line argument becomes an object id.

Accepted, as in git: a full id or a unique prefix of at least 4 hex characters; ``HEAD``
(the asset directory's ``.ama/HEAD``); a ref name under ``refs/``; followed by any number of
``^{tree}`` (the root tree of a manifest), ``^`` / ``^N`` (the first or Nth parent) and ``~N``
(the first parent, N times).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.graph import read_manifest, tree_of
from ama.plumbing.hashing import InvalidId, is_id
from ama.plumbing.odb import ObjectDatabase
from ama.plumbing.refs import MAX_SYMREF_DEPTH, SYMREF_PREFIX, RefStore


class RefReader(Protocol):
    """What a revision needs of a ref store: the stored value of a ref (an id or a
    symbolic ref), or None. :class:`RefStore` and the asset directory's HEAD both are."""

    def read(self, name: str) -> str | None: ...

_SUFFIX_RE = re.compile(r"\^\{tree\}|\^[0-9]*|~[0-9]*")
_HEX_RE = re.compile(r"[0-9a-f]{4,64}\Z")
_LOOSE_HEX_RE = re.compile(r"[0-9a-fA-F]+\Z")


class UnknownRevision(NotFound):
    """A name that is neither an id, a prefix nor a ref."""


def resolve_ref(refs: RefStore, head: Callable[[], RefReader], name: str) -> str:
    """Follow ``name`` (``HEAD`` or ``refs/…``) through symbolic refs to an id."""
    seen: list[str] = []
    for _ in range(MAX_SYMREF_DEPTH + 1):
        store = head() if name == "HEAD" else refs
        value = store.read(name)
        if value is None:
            raise UnknownRevision(
                f"ref {name} does not exist" + (f" (reached from {seen[0]})" if seen else ""),
                "list refs with 'ama show-ref'",
            )
        if not value.startswith(SYMREF_PREFIX):
            if not is_id(value):
                raise BadInput(f"ref {name} holds {value!r}, which is not an object id")
            return value
        seen.append(name)
        name = value[len(SYMREF_PREFIX):]
    raise BadInput(f"ref {seen[0]} points through more than {MAX_SYMREF_DEPTH} symbolic refs")


def resolve(odb: ObjectDatabase, refs: RefStore, head: Callable[[], RefReader], text: str
            ) -> str:
    """Return the id that ``text`` names.

    ``head`` returns the ref store holding ``HEAD`` (the asset directory's), called only
    when ``HEAD`` is named. Raises :class:`UnknownRevision`, :class:`InvalidId`,
    :class:`AmbiguousId` or an object error.
    """
    match = re.search(r"(\^\{tree\}|\^[0-9]*|~[0-9]*)+\Z", text)
    base, suffixes = (text[: match.start()], text[match.start():]) if match else (text, "")
    if not base:
        raise BadInput(f"{text!r} names no object")
    if base == "HEAD" or base.startswith("refs/"):
        oid = resolve_ref(refs, head, base)
    elif _HEX_RE.match(base):
        oid = odb.resolve(base)
    elif _LOOSE_HEX_RE.match(base):
        # A malformed id (too short, upper case, too long) is bad input, not a missing name.
        raise InvalidId(f"{base!r} is not an object id: ids are lowercase hex, "
                        "and a prefix has at least 4 characters")
    else:
        raise UnknownRevision(
            f"{text!r} is not an object id, an id prefix (4+ hex characters), HEAD or a ref",
            "list refs with 'ama show-ref'",
        )
    for suffix in _SUFFIX_RE.findall(suffixes):
        if suffix == "^{tree}":
            oid = tree_of(odb, oid)
        elif suffix.startswith("^"):
            n = int(suffix[1:] or 1)
            oid = _parent(odb, oid, n, text) if n else oid
        else:
            for _ in range(int(suffix[1:] or 1)):
                oid = _parent(odb, oid, 1, text)
    return oid


def _parent(odb: ObjectDatabase, oid: str, n: int, text: str) -> str:
    parents = read_manifest(odb, oid).parents
    if len(parents) < n:
        raise UnknownRevision(f"{text!r}: manifest {oid} has {len(parents)} parent(s), not {n}")
    return parents[n - 1]
