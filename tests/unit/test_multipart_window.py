"""A part's body (:class:`ama.plumbing.multipart.Window`): its bytes, and the progress it
tells, once per byte however often an HTTP client rewinds it to send it again."""

from __future__ import annotations

import io

from ama.plumbing.multipart import MiB, Window


def test_a_window_reads_its_part_and_tells_each_byte_once_across_a_rewind() -> None:
    data = bytes(range(256)) * (13 * 1024)  # 3.25 MiB
    told: list[int] = []
    w = Window(io.BytesIO(b"head" + data + b"tail"), 4, len(data), told.append)
    assert len(w) == len(data)
    first = b"".join(iter(lambda: w.read(16 << 10), b""))
    assert first == data
    # Told a MiB at a time and the rest at the end, not every 16 KiB read.
    assert told == [MiB, MiB, MiB, len(data) - 3 * MiB]
    # A retry: rewound to the start and read again; nothing is told twice.
    assert w.seek(0) == 0 and w.tell() == 0
    assert w.read() == data
    assert sum(told) == len(data) and len(told) == 4
    # Cut off part-way, then rewound: only bytes past the furthest read are told.
    told.clear()
    v = Window(io.BytesIO(data), 0, len(data), told.append)
    v.read(MiB + 5)
    v.seek(0)
    v.read(2 * MiB + 5)
    assert told == [MiB + 5, MiB]
    v.read()
    assert sum(told) == len(data)
