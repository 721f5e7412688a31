"""How a large object's pieces are grouped into the requests that fetch them."""

from __future__ import annotations

from ama.plumbing.ranged import chunks, runs


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
