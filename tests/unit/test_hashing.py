"""Object ids: BLAKE3 of the bytes, the same on both paths of hash_file."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from blake3 import blake3

from ama.plumbing.hashing import (
    EMPTY_BLOB_ID,
    MMAP_THRESHOLD,
    InvalidId,
    check_id,
    check_prefix,
    hash_bytes,
    hash_file,
    hash_stream,
    is_id,
)

SIZES = [0, 1, 1023, 1024, 1025, MMAP_THRESHOLD - 1, MMAP_THRESHOLD, MMAP_THRESHOLD + 1,
         3 * MMAP_THRESHOLD + 7]


def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def test_threshold_is_one_mebibyte() -> None:
    # The sizes below straddle it; if it moves, they must move with it.
    assert MMAP_THRESHOLD == 1 << 20


@pytest.mark.parametrize("size", SIZES)
def test_file_id_is_blake3_of_its_bytes_on_both_sides_of_the_threshold(
        tmp_path: Path, size: int) -> None:
    data = payload(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    expected = blake3(data).hexdigest()
    assert hash_file(path) == expected
    assert hash_file(path, size) == expected
    assert hash_bytes(data) == expected
    assert hash_stream(io.BytesIO(data)) == (expected, size)


def test_empty_file_has_the_empty_blob_id(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty") == EMPTY_BLOB_ID


def test_stream_hashing_reads_only_what_is_left() -> None:
    stream = io.BytesIO(b"skip-hello\n")
    stream.read(5)
    assert hash_stream(stream) == (hash_bytes(b"hello\n"), 6)


@pytest.mark.parametrize("value", ["", "A" * 64, "a" * 63, "a" * 65, "g" * 64, " " + "a" * 63,
                                   "a" * 64 + "\n"])
def test_malformed_ids_are_refused(value: str) -> None:
    assert not is_id(value)
    with pytest.raises(InvalidId) as caught:
        check_id(value, "tree id")
    assert caught.value.exit_code == 2
    assert "tree id" in caught.value.message and repr(value) in caught.value.message


@pytest.mark.parametrize("value", ["abc", "ABCD", "xyz0", "", "a" * 65, "abcd "])
def test_malformed_prefixes_are_refused(value: str) -> None:
    with pytest.raises(InvalidId) as caught:
        check_prefix(value)
    assert repr(value) in caught.value.message
    assert "at least 4" in caught.value.message


def test_prefixes_of_4_to_64_hex_characters_are_accepted() -> None:
    assert check_prefix("abcd") == "abcd"
    assert check_prefix(EMPTY_BLOB_ID) == EMPTY_BLOB_ID
    assert check_id(EMPTY_BLOB_ID) == EMPTY_BLOB_ID
