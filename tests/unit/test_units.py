"""Sizes as listings, reports and the dashboard print them."""

from __future__ import annotations

import pytest

from ama.plumbing.units import human_size


@pytest.mark.parametrize(("size", "text"), [
    (None, ""), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (5 << 20, "5.0 MiB"), (3 << 30, "3.0 GiB"), (2 << 40, "2.0 TiB"), (5000 << 40, "5000.0 TiB"),
])
def test_sizes_read_in_binary_units(size: int | None, text: str) -> None:
    assert human_size(size) == text
