"""How a large object's pieces are grouped into the requests that fetch them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ama.plumbing.durable import write_at
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.lock import Locked
from ama.plumbing.odb import CorruptObject
from ama.plumbing.ranged import chunks, fetch_ranged, runs


def _firsts(groups: list[list[tuple[int, int, int]]]) -> list[list[int]]:
    return [[n for n, _, _ in group] for group in groups]


def test_pieces_cut_an_object_and_grow_past_the_most_pieces() -> None:
    assert chunks(40, 16) == [(0, 0, 16), (1, 16, 16), (2, 32, 8)]
    assert len(chunks(10_001 * 16, 16)) <= 10_000


def test_a_whole_object_is_one_run_per_stream() -> None:
    plan = chunks(64 * 16, 16)
    groups = runs(plan, 8)
    assert _firsts(groups) == [list(range(n, n + 8)) for n in range(0, 64, 8)]


def test_runs_never_span_a_gap_nor_pass_the_longest() -> None:
    # After an interruption: pieces 3-5 and 8 are written already.
    plan = [p for p in chunks(12 * 16, 16) if p[0] not in {3, 4, 5, 8}]
    assert _firsts(runs(plan, 2)) == [[0, 1, 2], [6, 7], [9, 10, 11]]
    assert _firsts(runs(chunks(10 * 16, 16), 1, longest=4 * 16)) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # Pieces larger than the longest run (an object of terabytes): a run each.
    assert _firsts(runs(chunks(3 * 16, 16), 1, longest=10)) == [[0], [1], [2]]


def test_an_object_of_tens_of_gigabytes_is_asked_for_in_runs_of_512_mib() -> None:
    groups = runs(chunks(50 << 30), 8)
    assert len(groups) == 100
    assert all(sum(length for _, _, length in group) == 512 << 20 for group in groups)


def test_fewer_pieces_than_streams_are_a_run_each() -> None:
    assert _firsts(runs(chunks(3 * 16, 16), 8)) == [[0], [1], [2]]
    assert runs([], 8) == []


class _Served:
    """A transport that answers ranges of ``data`` in chunks of ``step`` bytes (across
    the pieces' boundaries), broken off once ``cut`` bytes were written in all; it notes
    the ranges asked for. ``tells``: whether it tells of the chunks it wrote."""

    def __init__(self, data: bytes, step: int, cut: int | None = None,
                 tells: bool = True) -> None:
        self.data, self.step, self.cut, self.tells = data, step, cut, tells
        self.sent = 0
        self.asked: list[tuple[int, int]] = []

    def _chunks(self, start: int, length: int) -> Any:
        for at in range(start, start + length, self.step):
            piece = self.data[at:min(at + self.step, start + length)]
            if self.cut is not None and self.sent + len(piece) > self.cut:
                raise ConnectionResetError("cut off")
            self.sent += len(piece)
            yield piece

    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None:
        self.asked.append((start, length))
        write_at(fd, self._chunks(start, length), start, written if self.tells else None)


def _listed(folder: Path, oid: str) -> set[int]:
    return {int(n) for n in (folder / f"{oid}.ranges").read_text().splitlines()[1:]}


def test_only_pieces_whose_bytes_are_all_written_are_listed_and_fetched_no_more(
        tmp_path: Path) -> None:
    # 10 pieces of 1,000 bytes, sent in chunks of 333 across their boundaries, one stream
    # (one run); cut off after 2,500 bytes: pieces 0 and 1 are written.
    data = os.urandom(10_000)
    oid = hash_bytes(data)
    cut = _Served(data, 333, cut=2_500)
    with pytest.raises(ConnectionResetError):
        fetch_ranged(cut, {}, oid, len(data), tmp_path, parallelism=1, chunk=1_000)
    assert _listed(tmp_path, oid) == {0, 1}
    partial = (tmp_path / f"{oid}.partial").read_bytes()
    assert partial[:2_000] == data[:2_000]
    heard: list[str] = []
    again = _Served(data, 333)
    done = fetch_ranged(again, {}, oid, len(data), tmp_path, parallelism=1, chunk=1_000,
                        notice=heard.append)
    assert done.read_bytes() == data
    assert again.asked == [(2_000, 8_000)]
    assert heard and "resuming" in heard[0]
    assert not (tmp_path / f"{oid}.ranges").exists()


def _four_pieces_fetched(folder: Path) -> tuple[bytes, str]:
    """10,000 random bytes fetched in pieces of 1,000 into ``folder``, cut off after 4,500
    bytes (four pieces listed): the bytes and their id."""
    data = os.urandom(10_000)
    oid = hash_bytes(data)
    with pytest.raises(ConnectionResetError):
        fetch_ranged(_Served(data, 333, cut=4_500), {}, oid, len(data), folder,
                     parallelism=1, chunk=1_000)
    assert _listed(folder, oid) == {0, 1, 2, 3}
    return data, oid


def test_a_list_of_pieces_of_another_size_is_thrown_away(tmp_path: Path) -> None:
    # Cut off with pieces of 1,000 bytes, then run again with pieces of 3,000 (the
    # threshold changed): the list names other bytes, so all is fetched again.
    data, oid = _four_pieces_fetched(tmp_path)
    again = _Served(data, 333)
    assert fetch_ranged(again, {}, oid, len(data), tmp_path, parallelism=1,
                        chunk=3_000).read_bytes() == data
    assert sum(length for _, length in again.asked) == len(data)


class _SecondBreaks(_Served):
    """Tells of no chunk; its run from byte 0 is answered whole, and the other breaks off
    once that one returned."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data, 333, tells=False)
        self.first = threading.Event()

    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None:
        if start:
            self.first.wait(5)
            time.sleep(0.5)  # the first stream lists its run meanwhile
            raise ConnectionResetError("cut off")
        super().write_range(action, oid, start, length, fd, written)
        self.first.set()


def test_a_run_answered_whole_is_listed_though_its_transport_tells_of_no_chunk(
        tmp_path: Path) -> None:
    # Two runs of five pieces on two streams: the first answered whole by a transport that
    # tells of no chunk is listed once it returned; the second breaks off.
    data = os.urandom(10_000)
    oid = hash_bytes(data)
    with pytest.raises(ConnectionResetError):
        fetch_ranged(_SecondBreaks(data), {}, oid, len(data), tmp_path, parallelism=2,
                     chunk=1_000)
    assert _listed(tmp_path, oid) == {0, 1, 2, 3, 4}


class _Paced(_Served):
    """Its run from byte 0 goes a chunk per ``first`` seconds, or breaks off after its
    first chunk (``breaks``); the others go a chunk per ``others`` seconds, each once that
    run sent its first chunk (so that it is under way, whatever the machine's load)."""

    def __init__(self, data: bytes, step: int, first: float = 0.0, others: float = 0.0,
                 breaks: bool = False) -> None:
        super().__init__(data, step)
        self.first, self.others, self.breaks = first, others, breaks
        self.under_way = threading.Event()

    def _chunks(self, start: int, length: int) -> Any:
        if start:
            self.under_way.wait(5)
        for n, piece in enumerate(super()._chunks(start, length)):
            if start == 0 and self.breaks and n == 1:
                raise ConnectionResetError("cut off")
            time.sleep(self.others if start else self.first)
            yield piece
            if start == 0:
                self.under_way.set()


def test_a_run_that_fails_stops_the_others(tmp_path: Path) -> None:
    # 8 pieces of 1,000 bytes, two streams: two runs of four. The first breaks off; the
    # second stops at its next chunk (or is not asked for, when the break came first),
    # and neither stream takes on more.
    data = os.urandom(8_000)
    oid = hash_bytes(data)
    served = _Paced(data, 333, others=0.05, breaks=True)
    with pytest.raises(ConnectionResetError):
        fetch_ranged(served, {}, oid, len(data), tmp_path, parallelism=2, chunk=1_000)
    assert served.sent < 2_000
    assert _listed(tmp_path, oid) == set()
    assert 1 <= len(served.asked) <= 2


def test_a_stream_done_takes_over_half_of_what_a_slow_one_has_left(tmp_path: Path) -> None:
    # 16 pieces of 1,000 bytes, two streams: two runs of eight. The first stream is slow;
    # the second, done at once, takes over the back half of the first's pieces left
    # (while at least four are left), and the first stops where the taken pieces begin.
    data = os.urandom(16_000)
    oid = hash_bytes(data)
    served = _Paced(data, 250, first=0.02)
    heard: list[int] = []
    done = fetch_ranged(served, {}, oid, len(data), tmp_path, parallelism=2, chunk=1_000,
                        on_bytes=heard.append)
    assert done.read_bytes() == data
    assert served.asked[:2] in ([(0, 8_000), (8_000, 8_000)], [(8_000, 8_000), (0, 8_000)])
    taken = served.asked[2:]
    assert taken and all(start % 1_000 == 0 and 0 < start < 8_000 for start, _ in taken)
    # The slow stream sent far less than its eight pieces; progress counts each byte once.
    assert served.sent < 16_000 + 8_000 // 2
    assert sum(heard) == len(data)


class _Held(_Served):
    """A transport whose first range waits until ``release`` is set."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data, 1_000)
        self.started, self.release = threading.Event(), threading.Event()

    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None:
        self.started.set()
        self.release.wait(30)
        super().write_range(action, oid, start, length, fd, written)


def test_one_fetch_at_a_time_writes_an_objects_partial_file(tmp_path: Path) -> None:
    """Two downloads of one object at once (two clones, two notebooks): the second is
    refused naming the holder, not let write into the first's partial file and list of
    pieces; the first, done, has moved its file out of the second's way."""
    data = os.urandom(10_000)
    oid = hash_bytes(data)
    first = _Held(data)
    out = tmp_path / "fetched"
    result: list[Path] = []
    fetching = threading.Thread(target=lambda: result.append(fetch_ranged(
        first, {}, oid, len(data), tmp_path, parallelism=1, chunk=1_000, into=out)))
    fetching.start()
    assert first.started.wait(30)
    second = _Served(data, 1_000)
    with pytest.raises(Locked, match=f"the partial download of object {oid[:12]} is locked"):
        fetch_ranged(second, {}, oid, len(data), tmp_path, parallelism=1, chunk=1_000)
    assert second.asked == []
    first.release.set()
    fetching.join(30)
    assert result == [out] and out.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if oid in p.name] == []  # nor lock left


def test_pieces_kept_that_a_crash_lost_are_fetched_again_not_called_corrupt(
        tmp_path: Path) -> None:
    # A power cut after the list of pieces reached the disk and before their bytes did:
    # the list names pieces whose bytes are zeros.
    data, oid = _four_pieces_fetched(tmp_path)
    partial = tmp_path / f"{oid}.partial"
    partial.write_bytes(bytes(len(data)))  # what the disk kept: nothing of the pieces
    heard: list[str] = []
    again = _Served(data, 333)
    done = fetch_ranged(again, {}, oid, len(data), tmp_path, parallelism=1, chunk=1_000,
                        notice=heard.append)
    assert done.read_bytes() == data
    assert again.asked == [(4_000, 6_000), (0, 10_000)]  # the rest, then all of it again
    assert any("do not hash to it" in line and "fetching it whole again" in line
               for line in heard)
    # Bytes fetched whole that do not hash to the id are the remote's fault: said so.
    wrong = bytearray(data)
    wrong[5] ^= 1
    with pytest.raises(CorruptObject):
        fetch_ranged(_Served(bytes(wrong), 333), {}, oid, len(data), tmp_path,
                     parallelism=1, chunk=1_000)
    assert not partial.exists() and not (tmp_path / f"{oid}.ranges").exists()
