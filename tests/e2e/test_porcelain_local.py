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
    assert ama("discard", "weights.bin", cwd=m).stderr == "1 restored, 0 unstaged\n"
    assert (m / "weights.bin").read_bytes() == b"\0" * 5000
    # Nothing left to discard: said in words, success as the help says.
    again = ama("discard", "weights.bin", cwd=m)
    assert again.stderr == "Nothing to discard: the files named have no changes\n"
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
        "new": ["x"], "modified": [], "removed": [], "restored": [], "skipped": [],
        "bytes": 1}
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


def test_json_output_has_the_shape_its_help_promises(tmp_path: Path) -> None:
    """Every --json help says whether it prints an object or an array; listings print arrays."""
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    (m / "a.txt").write_text("a")
    ama("init", "ml-models", cwd=m)
    ama("add", ".", cwd=m)
    ama("upload", "-m", "first", cwd=m)
    tree = ama("info", "--hash", cwd=m).stdout.strip()
    runs = {
        ("class", "list"): tmp_path, ("remote", "list"): tmp_path, ("project", "list"): tmp_path,
        ("list", "ml-models"): tmp_path, ("versions",): m, ("history",): m, ("diff",): m,
        ("find", "--hash", tree): m, ("status",): m, ("info",): m,
        ("class", "info", "ml-models"): tmp_path, ("project", "info"): tmp_path,
    }
    for argv, cwd in runs.items():
        helped = ama(*argv[:2 if argv[0] in ("class", "remote", "project") else 1], "--help",
                     cwd=cwd).stdout
        promised = list if "one JSON array" in helped else dict
        assert "one JSON array" in helped or "one JSON object" in helped, argv
        printed = json.loads(ama(*argv, "--json", cwd=cwd).stdout)
        assert isinstance(printed, promised), (argv, printed)


def test_diff_file_shows_how_a_text_file_changed(tmp_path: Path) -> None:
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    (m / "conf").mkdir(parents=True)
    (m / "conf" / "train.yaml").write_text("lr: 0.1\nepochs: 10\n")
    (m / "w.bin").write_bytes(b"\0\1\2")
    ama("init", "ml-models", cwd=m)
    ama("add", ".", cwd=m)
    ama("upload", "-m", "one", cwd=m)
    (m / "conf" / "train.yaml").write_text("lr: 0.01\nepochs: 10\n")
    ama("update", "conf/train.yaml", cwd=m)
    ama("upload", "-m", "two", cwd=m)
    shown = ama("diff", "--file", "conf/train.yaml", "0.0.0", "0.0.1", cwd=m).stdout
    assert shown == ("--- 0.0.0:conf/train.yaml\n+++ 0.0.1:conf/train.yaml\n"
                     "@@ -1,2 +1,2 @@\n-lr: 0.1\n+lr: 0.01\n epochs: 10\n")
    # Against the work tree, without a trailing newline.
    (m / "conf" / "train.yaml").write_text("lr: 0.01\nepochs: 20")
    shown = ama("diff", "--file", "conf/train.yaml", cwd=m).stdout
    assert "+epochs: 20\n\\ No newline at end of file\n" in shown
    assert shown.startswith("--- HEAD:conf/train.yaml\n+++ work tree:conf/train.yaml\n")
    page = ama("diff", "--file", "conf/train.yaml", "0.0.0", "0.0.1", "--html", cwd=m).stdout
    assert page.startswith("<!DOCTYPE html") and "0.0.1:conf/train.yaml" in page
    assert "lr:&nbsp;0.1<" in page and "lr:&nbsp;0.<span class=\"diff_add\">0<" in page
    # Bytes the store lacks are fetched; binary files are refused with what to run instead.
    clone = tmp_path / "c"
    ama("clone", "ml-models/1", str(clone), "--soft", cwd=tmp_path)
    assert "+lr: 0.01" in ama("diff", "--file", "conf/train.yaml", "0.0.0", "0.0.1",
                              cwd=clone).stdout
    refused = ama("diff", "--file", "w.bin", "0.0.0", "0.0.1", cwd=m, code=2).stderr
    assert "w.bin (0.0.0) is not a text file" in refused and "hint: compare ids" in refused
    ama("diff", "--file", "nothere.txt", "0.0.0", "0.0.1", cwd=m, code=3)
    ama("diff", "--html", cwd=m, code=2)


def test_clone_recursive_brings_the_inputs_and_theirs(tmp_path: Path) -> None:
    ama("class", "init", "datasets", cwd=tmp_path)
    ama("class", "init", "ml-models", cwd=tmp_path)

    def publish(cls: str, folder: str, text: str, inputs: list[str]) -> None:
        d = tmp_path / "src" / folder
        d.mkdir(parents=True)
        (d / "f.txt").write_text(text)
        ama("init", cls, cwd=d)
        ama("add", ".", cwd=d)
        for name in inputs:
            ama("inputs", "add", name, "--label", "made-from", cwd=d)
        ama("upload", "-m", text, cwd=d)

    publish("datasets", "raw", "raw", [])                        # datasets/1
    publish("datasets", "clean", "clean", ["datasets/1/0.0.0"])  # datasets/2
    publish("ml-models", "model", "model", ["datasets/2/0.0.0", "datasets/1/0.0.0"])
    work = tmp_path / "work"
    work.mkdir()
    out = json.loads(ama("clone", "ml-models/1", "--recursive", "--json", cwd=work).stdout)
    # Each input once, though datasets/1 is reached twice (directly and through datasets/2).
    assert sorted((i["name"], i["cloned"]) for i in out["inputs"]) == [
        ("datasets/1/0.0.0", True), ("datasets/2/0.0.0", True)]
    for folder, text in (("ml-models/1", "model"), ("datasets/2", "clean"),
                         ("datasets/1", "raw")):
        assert (work / folder / "f.txt").read_text() == text
    # Run again into another folder: inputs already here are left as they are.
    again = json.loads(ama("clone", "ml-models/1", "m2", "-r", "--json", cwd=work).stdout)
    assert [i["cloned"] for i in again["inputs"]] == [False, False]


def test_info_metadata_prints_the_versions_metadata_fetching_its_manifest(
        tmp_path: Path) -> None:
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    (m / "a.txt").write_text("a")
    (tmp_path / "meta.json").write_text('{"accuracy": 0.91, "epochs": [1, 2]}')
    ama("init", "ml-models", cwd=m)
    ama("add", ".", cwd=m)
    ama("upload", "-m", "one", "--metadata", str(tmp_path / "meta.json"), cwd=m)
    expected = {"accuracy": 0.91, "epochs": [1, 2]}
    assert json.loads(ama("info", "--metadata", cwd=m).stdout) == expected
    # Another machine's store, without the manifest: it is fetched from the remote.
    other = {**os.environ, "AMA_HOME": str(tmp_path / "other")}
    shared = (Path(os.environ["AMA_HOME"]) / "remote").as_uri()
    for args in (("remote", "add", "team", shared),):
        subprocess.run([AMA, *args], cwd=tmp_path, env=other, check=True, capture_output=True)
    done = subprocess.run([AMA, "info", "ml-models/1/0.0.0", "--metadata"], cwd=tmp_path,
                          env=other, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    ama("info", "--metadata", "--hash", cwd=m, code=2)


def test_alias_add_expect_moves_only_from_the_asset_named(tmp_path: Path) -> None:
    ama("class", "init", "ml", cwd=tmp_path)
    for n in (1, 2):
        d = tmp_path / f"m{n}"
        d.mkdir()
        (d / "a").write_text(str(n))
        ama("init", "ml", cwd=d)
        ama("add", ".", cwd=d)
        ama("upload", "-m", "x", cwd=d)
    m1 = tmp_path / "m1"
    assert ama("alias", "add", "prod", "--expect", "none", cwd=m1).stdout == "ml/prod -> ml/1\n"
    lost = ama("alias", "add", "prod", "--asset", "ml/2", "--expect", "ml/2", cwd=m1, code=1)
    assert "alias ml/prod points at ml/1, not ml/2" in lost.stderr
    ama("alias", "add", "prod", "--asset", "ml/2", "--expect", "ml/1", cwd=m1)
    taken = ama("alias", "add", "prod", "--expect", "none", cwd=m1, code=1)
    assert "alias ml/prod exists already: it points at ml/2" in taken.stderr
    ama("alias", "add", "prod", "--expect", "other/1", cwd=m1, code=2)
