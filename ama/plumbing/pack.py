"""Packs: many small objects in one file, version 1 of ama-format(5) ``PACKS``; written by
the client, checked by the remote in one pass, cut into ranges by the reader.

A pack exists only on the way to and from a remote: stores keep loose objects. Its index
comes before the objects so a pack can be checked as it streams by, without holding it.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from blake3 import blake3

from ama.plumbing.errors import BadInput
from ama.plumbing.hashing import CHUNK

MAGIC = b"ama-pack"
VERSION = 1
# Objects smaller than this travel in packs: below it a request costs more time than the
# bytes at a 20 ms round trip; from it on, objects go loose and in parallel.
THRESHOLD = 256 << 10
# A pack is filled up to about this size, then the next one is started.
TARGET = 64 << 20

_HEADER = struct.Struct(">8sII")
_ENTRY = struct.Struct(">32sQQ")
HEADER_SIZE = _HEADER.size
ENTRY_SIZE = _ENTRY.size


class BadPack(BadInput):
    """Bytes that are not a well-formed pack of a version this ama reads, or whose members
    do not hash to their ids."""

    def __init__(self, name: str, detail: str, members: list[str] | None = None) -> None:
        super().__init__(f"pack {name} is refused: {detail}",
                         "upload again; if it repeats, run 'ama store verify'")
        self.members = members or []


@dataclass(frozen=True)
class Member:
    """One object in a pack: its id and where its bytes are."""

    id: str
    offset: int
    length: int


def plan(objects: Iterable[tuple[str, int]], target: int = TARGET) -> list[list[tuple[str, int]]]:
    """Split (id, size) objects into the groups that make packs of at most ``target`` bytes
    (an object larger alone is a pack of its own), in the order given, each object once:
    as few packs as the target allows, of about equal size, since the packs of an upload
    are written and checked side by side and the largest sets its end (100 MiB of small
    files make two packs of 50 MiB, not one of 64 and one of 36)."""
    unique: dict[str, int] = {}
    for oid, size in objects:
        unique.setdefault(oid, size)
    total = sum(size + ENTRY_SIZE for size in unique.values())
    share = total / max(1, math.ceil(total / target))
    groups: list[list[tuple[str, int]]] = []
    group: list[tuple[str, int]] = []
    filled = before = current = 0
    for oid, size in unique.items():
        entry = size + ENTRY_SIZE
        # Each object goes to the share its middle falls in, unless the pack would outgrow
        # the target.
        share_of = int((before + entry / 2) // share)
        if group and (share_of > current or filled + entry > target):
            groups.append(group)
            group, filled = [], 0
        current = share_of
        group.append((oid, size))
        filled += entry
        before += entry
    if group:
        groups.append(group)
    return groups


def layout(objects: list[tuple[str, int]]) -> list[Member]:
    """The members of a pack of ``objects`` (id, size), in order."""
    offset = HEADER_SIZE + ENTRY_SIZE * len(objects)
    members = []
    for oid, size in objects:
        members.append(Member(oid, offset, size))
        offset += size
    return members


def header(members: list[Member]) -> bytes:
    """The header and index of a pack of ``members``."""
    parts = [_HEADER.pack(MAGIC, VERSION, len(members))]
    parts += [_ENTRY.pack(bytes.fromhex(m.id), m.offset, m.length) for m in members]
    return b"".join(parts)


# How many objects a pack's writer puts in between two reports (see :func:`write`): a
# few milliseconds of small files, so a bar drawing ten frames a second or more has a new
# count.
REPORT_EVERY = 256


def write(objects: list[tuple[str, int]], read: Callable[[str, int], bytes],
          out: BinaryIO, wrote: Callable[[int, int], None] | None = None) -> str:
    """Write a pack of ``objects`` (id, size) to ``out``, each object's bytes from
    ``read(id, size)``, and return the pack's name. ``wrote``, if given, hears
    ``(objects, bytes)`` written since its last call, every :data:`REPORT_EVERY` objects
    and at the end. Raises BadPack when an object's bytes are not ``size`` long (the
    caller's store changed under it)."""
    members = layout(objects)
    hasher = blake3()
    head = header(members)
    hasher.update(head)
    out.write(head)
    count = nbytes = 0
    for m in members:
        data = read(m.id, m.length)
        if len(data) != m.length:
            raise BadPack("being written", f"object {m.id} has {len(data)} bytes, not "
                          f"{m.length}", [m.id])
        hasher.update(data)
        out.write(data)
        if wrote is not None:
            count += 1
            nbytes += m.length
            if count == REPORT_EVERY:
                wrote(count, nbytes)
                count = nbytes = 0
    if wrote is not None and count:
        wrote(count, nbytes)
    return hasher.hexdigest()


def write_file(objects: list[tuple[str, int]], path_of: Callable[[str], str],
               folder: str, wrote: Callable[[int, int], None] | None = None
               ) -> tuple[str, str, int]:
    """Write a pack of ``objects`` read from the files ``path_of(id)`` into ``folder`` and
    return (name, path, size); the file is named after the pack. ``wrote`` is told of the
    objects written as they are (see :func:`write`)."""
    def read(oid: str, size: int) -> bytes:
        # A small file is one read(2): a file object and its buffer cost more than the
        # read itself, and a pack of 100,000 objects opens 100,000 of them.
        fd = os.open(path_of(oid), os.O_RDONLY)
        try:
            data = os.read(fd, size + 1)
            while len(data) <= size:  # short only at the end, but for some file systems
                more = os.read(fd, size + 1 - len(data))
                if not more:
                    break
                data += more
            return data
        finally:
            os.close(fd)

    temp = os.path.join(folder, f".pack-{os.getpid()}-{id(objects)}")
    try:
        with open(temp, "wb") as f:
            name = write(objects, read, f, wrote)
        size = os.stat(temp).st_size
        path = os.path.join(folder, f"{name}.pack")
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    return name, path, size


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    pieces = []
    while n:
        data = stream.read(min(n, CHUNK))
        if not data:
            break
        pieces.append(data)
        n -= len(data)
    return b"".join(pieces)


def read_index(stream: BinaryIO, name: str, size: int | None = None) -> list[Member]:
    """Read and check a pack's header and index from the start of ``stream``; return its
    members. Raises BadPack when they are malformed (``size``, when known, is the pack's
    length)."""
    head = _read_exactly(stream, HEADER_SIZE)
    if len(head) != HEADER_SIZE:
        raise BadPack(name, "it is shorter than a pack's header")
    magic, version, count = _HEADER.unpack(head)
    if magic != MAGIC:
        raise BadPack(name, "it does not start like a pack")
    if version != VERSION:
        raise BadPack(name, f"it is a pack of version {version}; this ama reads version "
                      f"{VERSION}")
    if count < 1:
        raise BadPack(name, "it holds no object")
    if size is not None and HEADER_SIZE + ENTRY_SIZE * count > size:
        raise BadPack(name, f"its index of {count} objects is longer than the pack")
    raw = _read_exactly(stream, ENTRY_SIZE * count)
    if len(raw) != ENTRY_SIZE * count:
        raise BadPack(name, "its index is cut short")
    members = []
    expected = HEADER_SIZE + ENTRY_SIZE * count
    seen: set[str] = set()
    for digest, offset, length in _ENTRY.iter_unpack(raw):
        oid = digest.hex()
        if offset != expected:
            raise BadPack(name, f"object {oid} starts at {offset}, not at {expected}", [oid])
        if oid in seen:
            raise BadPack(name, f"object {oid} is in it twice", [oid])
        seen.add(oid)
        members.append(Member(oid, offset, length))
        expected = offset + length
    if size is not None and expected != size:
        raise BadPack(name, f"its objects end at {expected} but it has {size} bytes")
    return members


def check(stream: BinaryIO, name: str, size: int | None = None,
          keep: Callable[[Member, bytes], None] | None = None) -> list[Member]:
    """Read a whole pack from ``stream`` once, checking that it hashes to ``name``, is well
    formed, and that every member hashes to its id; return its members. ``keep(member,
    bytes)`` is called with each member once it has checked.

    Raises BadPack naming every member whose bytes are not its id (all are read, so the
    error lists each bad one), or the defect that makes it no pack."""
    whole = blake3()

    class _Hashing:
        def read(self, n: int = -1) -> bytes:
            data = stream.read(n)
            whole.update(data)
            return data

    hashing: BinaryIO = _Hashing()  # type: ignore[assignment]
    members = read_index(hashing, name, size)
    bad: list[str] = []
    # The members are read a window of CHUNK bytes or more at a time and hashed as slices
    # of it: a pack of 1 KiB files holds 60,000 of them, and a read per member cost more
    # than its hash.
    window, at = memoryview(b""), 0
    for m in members:
        if len(window) - at < m.length:
            rest = window[at:]
            more = _read_exactly(hashing, max(m.length - len(rest), CHUNK))
            # No copy of what was read when nothing is left over: a pack of one large
            # member holds it once here, and once more only for ``keep``.
            window = memoryview(b"".join((rest, more)) if rest else more)
            at = 0
            del rest, more
            if len(window) < m.length:
                raise BadPack(name, f"it ends inside object {m.id}", [m.id])
        data = window[at:at + m.length]
        at += m.length
        if blake3(data).hexdigest() != m.id:
            bad.append(m.id)
        elif keep is not None:
            keep(m, data.obj if len(data) == len(window) else bytes(data))  # type: ignore[arg-type]
    if at < len(window) or stream.read(1):
        raise BadPack(name, "it has bytes after its last object")
    if bad:
        raise BadPack(name, f"{len(bad)} of its {len(members)} objects do not hash to their "
                      f"ids ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''})", bad)
    if whole.hexdigest() != name:
        raise BadPack(name, f"its bytes hash to {whole.hexdigest()}")
    return members


def rewrite(stream: BinaryIO, name: str, size: int, keep: set[str], folder: str
            ) -> tuple[str, str, int, list[Member]]:
    """Write a new pack, in ``folder``, of the members of pack ``name`` (read whole from
    ``stream``, ``size`` bytes, and checked as :func:`check` does) whose ids are in
    ``keep``, in their order; return (new name, path, size, its members). Raises BadPack as
    :func:`check` does, and when a member of ``keep`` is not in the pack: nothing is
    written from a pack that is not wholly what its name says.

    The kept bytes wait in a temp file, not in memory: a pack is as large as its uploader
    made it."""
    with tempfile.TemporaryFile(dir=folder) as spool:
        places: dict[str, tuple[int, int]] = {}

        def spooled(member: Member, data: bytes) -> None:
            if member.id in keep and member.id not in places:
                places[member.id] = (spool.tell(), member.length)
                spool.write(data)

        members = check(stream, name, size, spooled)
        absent = sorted(keep - set(places))
        if absent:
            raise BadPack(name, f"it does not hold object {absent[0]}", absent)
        kept = [(m.id, m.length) for m in members if m.id in places]

        def read(oid: str, length: int) -> bytes:
            spool.seek(places[oid][0])
            return spool.read(length)

        temp = os.path.join(folder, f".pack-{os.getpid()}-{id(kept)}")
        try:
            with open(temp, "wb") as out:
                new = write(kept, read, out)
            path = os.path.join(folder, f"{new}.pack")
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
    return new, path, os.stat(path).st_size, layout(kept)


def ranges(members: list[Member], gap: int = 0,
           limit: int = 8 << 20) -> Iterator[tuple[int, int, list[Member]]]:
    """Join members' byte ranges into (start, length, members) runs to fetch with one
    request each: members at most ``gap`` bytes apart share a run, which grows to at most
    ``limit`` bytes (a single larger member is a run of its own)."""
    ordered = sorted(members, key=lambda m: m.offset)
    run: list[Member] = []
    start = end = 0
    for m in ordered:
        if run and (m.offset - end > gap or m.offset + m.length - start > limit):
            yield start, end - start, run
            run = []
        if not run:
            start = m.offset
        run.append(m)
        end = max(end, m.offset + m.length)
    if run:
        yield start, end - start, run
