"""Packs (ama-format(5) PACKS): written, read back, and refused when anything is wrong."""

from __future__ import annotations

import io
import struct

import pytest
from blake3 import blake3

from ama.plumbing import pack
from ama.plumbing.pack import BadPack, Member


def _objects(*blobs: bytes) -> dict[str, bytes]:
    return {blake3(b).hexdigest(): b for b in blobs}


def _pack(objects: dict[str, bytes]) -> tuple[str, bytes]:
    out = io.BytesIO()
    name = pack.write([(oid, len(b)) for oid, b in objects.items()],
                      lambda oid, size: objects[oid], out)
    return name, out.getvalue()


def test_round_trip_keeps_every_member_and_names_the_pack_by_its_hash() -> None:
    objects = _objects(b"", b"a", b"hello world" * 100)
    name, data = _pack(objects)
    assert name == blake3(data).hexdigest()
    assert data[:8] == b"ama-pack" and struct.unpack(">II", data[8:16]) == (1, 3)
    kept: dict[str, bytes] = {}
    members = pack.check(io.BytesIO(data), name, len(data),
                         lambda m, b: kept.__setitem__(m.id, b))
    assert kept == objects
    assert [m.id for m in members] == list(objects)
    for m in members:
        assert data[m.offset:m.offset + m.length] == objects[m.id]
    assert members[-1].offset + members[-1].length == len(data)


def test_pinned_bytes() -> None:
    name, data = _pack(_objects(b"abc"))
    assert len(data) == 16 + 48 + 3
    assert data[16:48] == bytes.fromhex(blake3(b"abc").hexdigest())
    assert struct.unpack(">QQ", data[48:64]) == (64, 3)
    assert data[64:] == b"abc"


def test_a_corrupt_member_is_named_and_the_pack_refused() -> None:
    objects = _objects(b"one", b"two", b"three")
    name, data = _pack(objects)
    members = pack.read_index(io.BytesIO(data), name)
    broken = bytearray(data)
    broken[members[1].offset] ^= 1
    kept: list[str] = []
    with pytest.raises(BadPack) as e:
        pack.check(io.BytesIO(bytes(broken)), name, len(broken),
                   lambda m, b: kept.append(m.id))
    assert e.value.members == [members[1].id]
    assert members[1].id in e.value.message


@pytest.mark.parametrize("damage, words", [
    (lambda d: b"ama-pakk" + d[8:], "does not start like a pack"),
    (lambda d: d[:8] + struct.pack(">I", 2) + d[12:], "version 2"),
    (lambda d: d[:8] + struct.pack(">II", 1, 0), "holds no object"),
    (lambda d: d[:-1], "ends inside object"),
    (lambda d: d + b"x", "bytes after its last object"),
    (lambda d: d[:48] + struct.pack(">QQ", 65, 3) + d[64:], "starts at 65"),
])
def test_malformed_packs_are_refused(damage, words: str) -> None:  # type: ignore[no-untyped-def]
    name, data = _pack(_objects(b"abc"))
    with pytest.raises(BadPack, match=words):
        pack.check(io.BytesIO(damage(data)), name)


def test_a_pack_whose_bytes_are_not_its_name_is_refused() -> None:
    name, data = _pack(_objects(b"abc"))
    with pytest.raises(BadPack, match="hash to"):
        pack.check(io.BytesIO(data), "0" * 64)


def test_plan_makes_the_fewest_packs_of_about_equal_size_and_sends_each_object_once() -> None:
    objects = [(f"{i:064x}", 100) for i in range(10)] + [(f"{0:064x}", 100)]
    groups = pack.plan(objects, target=3 * (100 + pack.ENTRY_SIZE))
    assert [len(g) for g in groups] == [2, 3, 2, 3]  # not 3, 3, 3, 1
    assert sum(groups, []) == objects[:10]
    assert [len(g) for g in pack.plan(objects[:10], target=5 * (100 + pack.ENTRY_SIZE))] \
        == [5, 5]
    assert [len(g) for g in pack.plan(objects[:10], target=10**6)] == [10]


def test_plan_never_outgrows_the_target_and_keeps_a_large_object_alone() -> None:
    entry = 100 + pack.ENTRY_SIZE
    objects = [(f"{i:064x}", 100) for i in range(7)]
    objects.insert(3, (f"{99:064x}", 10 * entry))
    groups = pack.plan(objects, target=4 * entry)
    assert sum(groups, []) == objects
    assert [g for g in groups if (f"{99:064x}", 10 * entry) in g] == [[objects[3]]]
    assert all(sum(s + pack.ENTRY_SIZE for _, s in g) <= 4 * entry
               for g in groups if len(g) > 1)


def test_ranges_join_neighbours_and_split_at_gaps_and_the_limit() -> None:
    ms = [Member("a", 100, 10), Member("b", 110, 10), Member("c", 500, 10),
          Member("d", 510, 100)]
    assert [(s, n, [m.id for m in r]) for s, n, r in pack.ranges(ms)] == [
        (100, 20, ["a", "b"]), (500, 110, ["c", "d"])]
    assert [(s, n) for s, n, _ in pack.ranges(ms, gap=1000)] == [(100, 510)]
    assert [(s, n) for s, n, _ in pack.ranges(ms, limit=50)] == [(100, 20), (500, 10),
                                                                 (510, 100)]


def test_write_file_names_the_file_after_the_pack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    objects = _objects(b"x" * 10, b"y" * 20)
    for oid, b in objects.items():
        (tmp_path / oid).write_bytes(b)
    name, path, size = pack.write_file([(o, len(b)) for o, b in objects.items()],
                                       lambda o: str(tmp_path / o), str(tmp_path))
    assert path == str(tmp_path / f"{name}.pack")
    with open(path, "rb") as f:
        assert [m.id for m in pack.check(f, name, size)] == list(objects)
