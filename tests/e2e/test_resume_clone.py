"""A clone killed while it placed files is resumed by running the same clone again; a clone
of something else into it is refused, naming the unfinished clone and how to finish it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_interruptions import count_files, data_asset, kill_when, make_data
from tests.e2e.test_lifecycle import ama, files


def test_a_killed_clone_is_resumed_by_cloning_again(tmp_path: Path) -> None:
    alice_home = tmp_path / "alice"
    alice = {"AMA_HOME": str(alice_home)}
    m = data_asset(tmp_path, alice)
    ama("add", ".", cwd=m, env=alice)
    ama("upload", "-m", "first", cwd=m, env=alice)
    v0 = files(m)
    (m / "d00" / "000.bin").write_bytes(b"changed")
    ama("add", ".", cwd=m, env=alice)
    ama("upload", "-m", "second", cwd=m, env=alice)
    ama("class", "init", "other", cwd=tmp_path, env=alice)
    o = tmp_path / "o"
    o.mkdir()
    ama("init", "other", cwd=o, env=alice)
    (o / "x.txt").write_text("x")
    ama("add", ".", cwd=o, env=alice)
    ama("upload", "-m", "other", cwd=o, env=alice)

    bob_home = tmp_path / "bob"
    bob = {"AMA_HOME": str(bob_home)}
    ama("remote", "add", "team", (alice_home / "remote").as_uri(), cwd=tmp_path, env=bob)
    ama("remote", "default", "team", cwd=tmp_path, env=bob)
    c = tmp_path / "c"
    kill_when(["clone", "data/1/0.0.0", "-d", str(c)], tmp_path, bob,
              lambda: count_files(c) >= 200)
    assert 0 < len(files(c)) < len(v0)
    # Another asset, or another version, is not cloned over it.
    for other in ("other/1", "data/1/0.0.1"):
        refused = ama("clone", other, "-d", str(c), cwd=tmp_path, env=bob, code=1)
        assert f"{c} holds an unfinished clone of data/1 0.0.0" in refused.stderr
        assert f"cd {c} && ama download" in refused.stderr
    # The same clone again, even without its version, finishes the one begun.
    done = json.loads(ama("clone", "data/1", "-d", str(c), "--json", cwd=tmp_path,
                          env=bob).stdout)
    assert (done["name"], done["version"]) == ("data/1", "0.0.0")
    assert files(c) == v0
    status = json.loads(ama("status", "--json", cwd=c, env=bob).stdout)
    assert status["uploaded"] is True and status["untracked"] == []
    assert not (c / ".ama" / "clone").exists()
    # Finished: a clone into it is refused as into any directory that holds files.
    again = ama("clone", "data/1", "-d", str(c), cwd=tmp_path, env=bob, code=1)
    assert "is not an empty directory" in again.stderr


def test_a_killed_clone_finished_by_download_is_a_clone_no_more(tmp_path: Path) -> None:
    home = {"AMA_HOME": str(tmp_path / "home")}
    ama("class", "init", "data", cwd=tmp_path, env=home)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m, env=home)
    make_data(m, "v0")
    ama("add", ".", cwd=m, env=home)
    ama("upload", "-m", "first", cwd=m, env=home)
    c = tmp_path / "c"
    kill_when(["clone", "data/1", "-d", str(c)], tmp_path, home,
              lambda: count_files(c) >= 200)
    assert (c / ".ama" / "clone").exists()
    ama("download", cwd=c, env=home)
    assert files(c) == files(m) and not (c / ".ama" / "clone").exists()
    again = ama("clone", "data/1", "-d", str(c), cwd=tmp_path, env=home, code=1)
    assert "is not an empty directory" in again.stderr
