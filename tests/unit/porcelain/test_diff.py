from __future__ import annotations

import pytest

from ama.plumbing.errors import NotFound
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.diff import diff
from ama.porcelain.remove import remove
from tests.unit.porcelain.conftest import commit, write


def test_diff_between_versions_and_against_the_work_tree(asset: Asset) -> None:
    write(asset.root, {"a": "1", "b": "2", "c": "3"})
    add(asset, ["."])
    assert [(c.status, c.path) for c in diff(asset, [])] == [("A", "a"), ("A", "b"),
                                                             ("A", "c")]
    with pytest.raises(NotFound, match="never uploaded"):
        diff(asset, ["HEAD"])
    commit(asset, "0.0.0")
    write(asset.root, {"a": "changed", "d": "4"})
    add(asset, ["d"])
    remove(asset, ["c"])
    work = diff(asset, [])
    assert [(c.status, c.path) for c in work] == [("M", "a"), ("D", "c"), ("A", "d")]
    assert work[0].old[1] == 1 and work[0].new[1] == len("changed")
    add(asset, ["a"])
    commit(asset, "0.0.1")
    between = diff(asset, ["0.0.0", "0.0.1"])
    assert [(c.status, c.path) for c in between] == [("M", "a"), ("D", "c"), ("A", "d")]
    assert diff(asset, ["0.0.1"]) == []
    assert diff(asset, ["HEAD", "0.0.1"]) == []
    with pytest.raises(NotFound, match="not known on this machine"):
        diff(asset, ["0.0.7"])
