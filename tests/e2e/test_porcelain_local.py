"""The newcomer's first minutes through the installed ``ama``, as far as the local verbs go,
and bad inputs that must change nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

AMA = shutil.which("ama", path=os.path.dirname(sys.executable)) or "ama"


def ama(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_newcomer_flow(tmp_path: Path) -> None:
    ama("class", "init", "ml-models", "--description", "Trained models", cwd=tmp_path)
    assert "ml-models\tTrained models" in ama("class", "list", cwd=tmp_path).stdout
    m = tmp_path / "m"
    m.mkdir()
    out = ama("init", "ml-models", cwd=m).stdout
    assert "temp_" in out and "ml-models" in out
    (m / "weights.bin").write_bytes(b"\0" * 5000)
    (m / "conf").mkdir()
    (m / "conf" / "train.yaml").write_text("lr: 0.1\n")
    status = json.loads(ama("status", "--json", cwd=m).stdout)
    assert status["untracked"] == ["conf/train.yaml", "weights.bin"]
    assert status["version"] == "temp_" and status["manifest"] is None
    ama("add", ".", cwd=m)
    status = json.loads(ama("status", "--json", cwd=m).stdout)
    assert status["staged"]["new"] == ["conf/train.yaml", "weights.bin"]
    assert status["untracked"] == [] and status["modified"] == []
    (m / "conf" / "train.yaml").write_text("lr: 0.01\n")
    human = ama("status", cwd=m).stdout
    assert "modified: conf/train.yaml" in human
    assert json.loads(ama("status", "--json", cwd=m).stdout)["modified"] == ["conf/train.yaml"]
    ama("update", "train.yaml", cwd=m / "conf")
    assert json.loads(ama("status", "--json", cwd=m).stdout)["modified"] == []
    assert ama("diff", "--name-status", cwd=m).stdout == "A\tconf/train.yaml\nA\tweights.bin\n"
    (m / "weights.bin").write_bytes(b"oops")
    ama("discard", "weights.bin", cwd=m)
    assert (m / "weights.bin").read_bytes() == b"\0" * 5000
    removed = json.loads(ama("remove", "conf", "--json", cwd=m).stdout)
    assert removed == {"unstaged": ["conf/train.yaml"], "deleted": ["conf/train.yaml"]}
    assert not (m / "conf").exists()
    info = json.loads(ama("store", "info", "--json", cwd=m).stdout)
    assert info["asset_dirs"] == 1 and info["objects"] >= 2
    assert info["link_effective"] in ("reflink", "copy")
    verify = json.loads(ama("store", "verify", "--json", cwd=m).stdout)
    assert verify["corrupt"] == [] and verify["checked"] == info["objects"]


def test_bad_inputs_change_nothing(tmp_path: Path) -> None:
    home = Path(os.environ["AMA_HOME"])
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    err = ama("init", "no-such-class", cwd=m, code=3).stderr
    assert "unknown class 'no-such-class'" in err and "ama class init no-such-class" in err
    assert not (m / ".ama").exists()
    ama("status", cwd=m, code=3)
    ama("init", "ml-models", cwd=m)
    ama("init", "ml-models", cwd=m, code=1)
    (m / "sub").mkdir()
    assert "cannot nest" in ama("init", "ml-models", cwd=m / "sub", code=2).stderr
    (m / "ok.txt").write_text("ok")
    os.mkfifo(m / "pipe")
    before = snapshot(m / ".ama"), snapshot(home)
    err = ama("add", ".", cwd=m, code=2).stderr
    assert "pipe: is a FIFO" in err
    assert ama("add", "missing.txt", cwd=m, code=3).stderr.startswith("ama: error: missing.txt")
    ama("update", "ok.txt", cwd=m, code=3)
    ama("update", cwd=m, code=2)
    ama("remove", "ok.txt", cwd=m, code=3)
    ama("discard", "ok.txt", cwd=m, code=3)
    ama("diff", "0.0.1", cwd=m, code=3)
    ama("add", "/etc/hostname", cwd=m, code=2)
    err = ama("config", "set", "link.strategy", "teleport", cwd=m, code=2).stderr
    assert "reflink" in err
    err = ama("config", "set", "colour", "blue", cwd=m, code=2).stderr
    assert "link.strategy" in err and "user.email" in err
    ama("class", "init", "ml-models", cwd=m, code=1)
    ama("class", "info", "-n", "nope", cwd=m, code=3)
    ama("store", "verify", "--sample", "0", cwd=m, code=2)
    assert (snapshot(m / ".ama"), snapshot(home)) == before


def test_config_round_trip_and_json_shapes(tmp_path: Path) -> None:
    ama("config", "set", "link.strategy", "hardlink", cwd=tmp_path)
    ama("config", "set", "user.name", "Ada Lovelace", cwd=tmp_path)
    assert ama("config", "get", "link.strategy", cwd=tmp_path).stdout == "hardlink\n"
    listed = json.loads(ama("config", "list", "--json", cwd=tmp_path).stdout)
    assert listed["link.strategy"] == {"value": "hardlink", "source": "file"}
    # conftest sets AMA_AUTHOR_NAME, which wins over the file for one command.
    assert listed["user.name"]["source"] == "env"
    ama("config", "get", "server.ip", cwd=tmp_path, code=3)
    ama("class", "init", "data", cwd=tmp_path)
    d = tmp_path / "d"
    d.mkdir()
    ama("init", "data", cwd=d)
    (d / "x").write_text("x")
    assert json.loads(ama("add", "--json", ".", cwd=d).stdout) == {
        "new": ["x"], "modified": [], "removed": [], "restored": [], "bytes": 1}
    diff = json.loads(ama("diff", "--json", cwd=d).stdout)
    assert diff == [{"status": "A", "path": "x", "old": None,
                     "new": {"id": diff[0]["new"]["id"], "size": 1, "type": "blob"}}]
    gc = json.loads(ama("store", "gc", "--json", "--grace", "0", cwd=d).stdout)
    assert gc["deleted"] == [] and gc["dry_run"] is False
    shutil.rmtree(d)
    pruned = json.loads(ama("store", "prune", "--json", cwd=tmp_path).stdout)
    assert pruned == {"dropped": [str(d)], "kept": []}


@pytest.mark.parametrize("name", ["init", "class", "config", "add", "update", "remove",
                                  "discard", "status", "diff", "store"])
def test_help(tmp_path: Path, name: str) -> None:
    out = ama(name, "--help", cwd=tmp_path).stdout
    assert "Exit status" in out
