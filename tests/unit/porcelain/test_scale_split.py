"""The verbs from the size at which they split their work with a forked child
(:data:`ama.plumbing.parallel.PARALLEL_FROM` files): every file staged, stored and checked
exactly as below that size."""

from __future__ import annotations

import os

from ama.plumbing.parallel import PARALLEL_FROM
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.status import status
from ama.porcelain.store import verify
from tests.unit.porcelain.conftest import commit


def test_add_and_status_of_more_files_than_the_split(asset: Asset) -> None:
    count = PARALLEL_FROM + 500
    for i in range(count):
        folder = asset.root / f"d{i % 50:02d}"
        if i < 50:
            folder.mkdir()
        (folder / f"f{i}").write_bytes(f"file number {i}\n".encode())
    staged = add(asset, ["."])
    assert len(staged.new) == count
    index = asset.index()
    assert len(index) == count
    for path in ("d00/f0", f"d{(count - 1) % 50:02d}/f{count - 1}"):
        entry = index.get(path)
        assert entry is not None
        assert asset.odb.get(entry.id) == (asset.root / path).read_bytes()
    assert len(list(asset.odb)) == count
    assert verify(asset.store).corrupt == [] and asset.odb.temp_files() == []
    commit(asset)
    s = status(asset)
    assert s.clean and s.uploaded
    # A change in each half of the files is seen.
    (asset.root / "d01/f1").write_bytes(b"changed near the start")
    os.unlink(asset.root / f"d{(count - 2) % 50:02d}/f{count - 2}")
    s = status(asset)
    assert s.modified == ["d01/f1"] and s.deleted == [f"d{(count - 2) % 50:02d}/f{count - 2}"]
