"""The metadata verbs through the installed ``ama``: list, info, find, alias, asset set,
inputs and completion, against the embedded remote and against ama-server under gunicorn.

Versions are put on the remote by :func:`tests.unit.porcelain.published.publish`, which
sends objects and commits through the same transport an upload uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.head import Head
from ama.plumbing.objects import Input
from ama.plumbing.transport import HttpTransport, Transport
from ama.porcelain.asset import Asset
from ama.porcelain.config import Config
from ama.porcelain.inputs import staged
from ama.porcelain.remotes import open_remote
from tests.services.server import RunningServer
from tests.unit.porcelain.published import publish

AMA = shutil.which("ama", path=os.path.dirname(sys.executable)) or "ama"


def ama(*args: str, cwd: Path, code: int = 0,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    if code:
        assert done.stderr.startswith("ama: error: ") or code == 2, done.stderr
    return done


def as_json(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> Any:
    return json.loads(ama(*args, "--json", cwd=cwd, env=env).stdout)


@pytest.fixture
def local(tmp_path: Path) -> Transport:
    """The embedded remote with the classes ml-models and datasets (also known locally)."""
    for cls in ("ml-models", "datasets"):
        ama("class", "init", cls, cwd=tmp_path)
    transport, _info = open_remote(Config.open())
    for cls in ("ml-models", "datasets"):
        transport.put_class("default", cls)
    return transport


def holding(tmp_path: Path, version: dict[str, Any], folder: str = "m") -> Path:
    """An asset directory holding ``version`` (HEAD and the manifest in the store, as a
    clone leaves them; the files themselves do not matter to these commands)."""
    root = tmp_path / folder
    root.mkdir()
    ama("init", version["class"], cwd=root)
    head = Asset.open(root).head
    Head(version["class"], str(version["ordinal"]), version["version"], version["manifest"],
         head.remote, head.project).write(root / ".ama")
    return root


def test_list_info_and_find_on_the_embedded_remote(tmp_path: Path, local: Transport) -> None:
    v1 = publish(local, "default", "ml-models", {"w.bin": b"w" * 1000, "conf": {"a.yaml": b"a"}})
    v2 = publish(local, "default", "ml-models", {"w.bin": b"W" * 1000, "conf": {"a.yaml": b"a"}},
                 asset=1, parent=v1["manifest"], message="second")
    other = publish(local, "default", "ml-models", {"w.bin": b"w" * 1000, "conf": {"a.yaml": b"a"}})

    listed = as_json("list", "--class", "ml-models", cwd=tmp_path)
    assert [(a["name"], a["latest"], a["versions"]) for a in listed] == [
        ("ml-models/1", "0.0.1", 2), ("ml-models/2", "0.0.0", 1)]
    assert as_json("list", "ml-models", cwd=tmp_path) == listed
    human = ama("list", "ml-models", cwd=tmp_path).stdout.splitlines()
    assert human[0].split() == ["NAME", "ALIAS", "LATEST", "STATUS", "TITLE"]
    assert human[1].split() == ["ml-models/1", "-", "0.0.1", "active"]
    assert as_json("list", "datasets", cwd=tmp_path) == []

    shown = as_json("info", "ml-models/1", cwd=tmp_path)
    assert shown["version"]["version"] == "0.0.1" and shown["message"] == "second"
    assert [v["version"] for v in shown["versions"]] == ["0.0.0", "0.0.1"]
    assert shown["hash"] == v2["tree"]
    first = as_json("info", "ml-models/1/0.0.0", cwd=tmp_path)
    assert first["version"]["manifest"] == v1["manifest"] and first["versions"] == []
    assert ama("info", "ml-models/1/0.0.0", "--hash", cwd=tmp_path).stdout == v1["tree"] + "\n"
    assert "latest:      0.0.1" in ama("info", "ml-models/1", cwd=tmp_path).stdout

    # The same files under the same paths: one asset hash, whatever the asset.
    assert v1["tree"] == other["tree"] != v2["tree"]
    found = as_json("find", "--class", "ml-models", "--hash", v1["tree"], cwd=tmp_path)
    assert [(f["name"], f["version"]) for f in found] == [("ml-models/1", "0.0.0"),
                                                          ("ml-models/2", "0.0.0")]
    assert ama("find", "--hash", v2["tree"], cwd=tmp_path).stdout == \
        f"ml-models/1/0.0.1\t{v2['tree']}\n"
    assert as_json("find", "--size", "ml-models/1/0.0.0", cwd=tmp_path) == {
        "name": "ml-models/1", "version": "0.0.0", "manifest": v1["manifest"],
        "bytes": 1001, "files": 2}
    assert ama("find", "--size", "ml-models/2", cwd=tmp_path).stdout.startswith(
        "ml-models/2/0.0.0\t1001\t2\t")

    (tmp_path / "copy.bin").write_bytes(b"w" * 1000)
    matches = as_json("find", "--file", "copy.bin", cwd=tmp_path)
    assert [(m["name"], m["version"], m["paths"]) for m in matches] == [
        ("ml-models/1", "0.0.0", ["w.bin"]), ("ml-models/2", "0.0.0", ["w.bin"])]
    (tmp_path / "a.yaml").write_bytes(b"a")
    assert ama("find", "--file", "a.yaml", "--class", "ml-models", cwd=tmp_path
               ).stdout.count("conf/a.yaml") == 3

    # In an asset directory: its asset and version, and the hash without the remote.
    m = holding(tmp_path, v1)
    here = as_json("info", cwd=m)
    assert here["asset"]["name"] == "ml-models/1" and here["version"]["version"] == "0.0.0"
    shutil.rmtree(Path(os.environ["AMA_HOME"]) / "remote")
    assert ama("info", "--hash", cwd=m).stdout == v1["tree"] + "\n"


def test_nothing_found_and_bad_input(tmp_path: Path, local: Transport) -> None:
    v1 = publish(local, "default", "ml-models", {"a": b"a"})
    (tmp_path / "x").write_bytes(b"not uploaded")
    (tmp_path / "folder").mkdir()
    missing = ama("find", "--file", "x", cwd=tmp_path, code=3).stderr
    assert f"blob {hash_bytes(b'not uploaded')}" in missing
    assert json.loads(ama("find", "--alias", "nobody", "--json", cwd=tmp_path, code=3).stdout) == []
    ama("find", "--hash", "0" * 64, cwd=tmp_path, code=3)
    assert "64 lowercase hex" in ama("find", "--hash", "abc", cwd=tmp_path, code=2).stderr
    assert "exactly one" in ama("find", cwd=tmp_path, code=2).stderr
    assert "exactly one" in ama("find", "--alias", "a", "--hash", v1["tree"], cwd=tmp_path,
                                code=2).stderr
    ama("find", "--file", "folder", cwd=tmp_path, code=2)
    ama("find", "--file", "nope", cwd=tmp_path, code=3)
    ama("find", "--size", "ml-models/7", cwd=tmp_path, code=3)
    assert "9.9.9" in ama("find", "--size", "ml-models/1/9.9.9", cwd=tmp_path, code=3).stderr
    assert "CLASS/ASSET" in ama("find", "--size", "ml-models", cwd=tmp_path, code=2).stderr
    assert "ama class list" in ama("list", cwd=tmp_path, code=2).stderr
    assert "not found" in ama("list", "--class", "nope", cwd=tmp_path, code=3).stderr
    ama("list", "Bad/Name", cwd=tmp_path, code=2)
    ama("info", "ml-models/2", cwd=tmp_path, code=3)
    ama("info", "ml-models/1/01.0.0", cwd=tmp_path, code=2)
    ama("info", cwd=tmp_path, code=3)  # not an asset directory
    temp = tmp_path / "t"
    temp.mkdir()
    ama("init", "ml-models", cwd=temp)
    assert "ama upload" in ama("info", cwd=temp, code=3).stderr
    assert ama("info", "--hash", cwd=temp).stdout == ama("write-tree", cwd=temp).stdout
    ama("list", "--remote", "nowhere", "ml-models", cwd=tmp_path, code=3)


def test_aliases_and_asset_metadata(tmp_path: Path, local: Transport) -> None:
    v1 = publish(local, "default", "ml-models", {"a": b"a"})
    publish(local, "default", "ml-models", {"b": b"b"})
    m = holding(tmp_path, v1)

    assert ama("alias", "add", "prod", cwd=m).stdout == "ml-models/prod -> ml-models/1\n"
    moved = ama("alias", "add", "prod", "--asset", "ml-models/2", cwd=tmp_path)
    assert "moved ml-models/prod from ml-models/1" in moved.stderr
    assert [f["name"] for f in as_json("find", "--alias", "prod", cwd=tmp_path)] == ["ml-models/2"]
    ama("alias", "add", "best", cwd=m)
    assert ama("alias", "list", cwd=m).stdout == "ml-models/best\n"
    assert as_json("alias", "list", "--asset", "ml-models/prod", cwd=tmp_path) == {
        "name": "ml-models/2", "aliases": ["prod"]}
    # An alias names an asset anywhere a name is taken.
    assert as_json("info", "ml-models/prod", cwd=tmp_path)["asset"]["name"] == "ml-models/2"

    refused = ama("alias", "remove", "prod", cwd=m, code=3).stderr
    assert "names ml-models/2, not ml-models/1" in refused and "--asset ml-models/2" in refused
    ama("alias", "remove", "prod", "--asset", "ml-models/2", cwd=tmp_path)
    ama("alias", "remove", "prod", "--asset", "ml-models/2", cwd=tmp_path, code=3)
    for bad in ("123", "temp_x", "Has-Caps", "-x"):
        ama("alias", "add", bad, cwd=m, code=2)
    assert as_json("alias", "list", cwd=m)["aliases"] == ["best"]

    record = as_json("asset", "set", "--title", "ResNet", "--description", "A model",
                     "--tag", "vision", "--tag", "draft", cwd=m)
    assert (record["title"], record["description"], record["tags"]) == (
        "ResNet", "A model", ["draft", "vision"])
    record = as_json("asset", "set", "--add-tag", "prod", "--remove-tag", "draft", cwd=m)
    assert record["tags"] == ["prod", "vision"] and record["title"] == "ResNet"
    shown = as_json("info", "ml-models/best", cwd=tmp_path)["asset"]
    assert (shown["title"], shown["tags"], shown["aliases"]) == ("ResNet", ["prod", "vision"],
                                                                 ["best"])
    listed = ama("list", cwd=m).stdout.splitlines()
    assert listed[1].split() == ["ml-models/1", "best", "0.0.0", "active", "ResNet"]
    assert as_json("asset", "set", "--clear-tags", cwd=m)["tags"] == []
    assert "nothing to change" in ama("asset", "set", cwd=m, code=2).stderr
    ama("asset", "set", "--title", "two\nlines", cwd=m, code=2)
    ama("asset", "set", "--tag", "a,b", cwd=m, code=2)
    ama("asset", "set", "--tag", "a", "--add-tag", "b", cwd=m, code=2)
    ama("asset", "set", "--title", "x", "--asset", "ml-models/9", cwd=tmp_path, code=3)
    assert as_json("info", "ml-models/1", cwd=tmp_path)["asset"]["title"] == "ResNet"


def test_inputs_are_staged_listed_and_resolved(tmp_path: Path, local: Transport) -> None:
    data = publish(local, "default", "datasets", {"d.csv": b"1,2\n"})
    data2 = publish(local, "default", "datasets", {"d.csv": b"1,2,3\n"}, asset=1,
                    parent=data["manifest"])
    ama("alias", "add", "tiny", "--asset", "datasets/1", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    assert "No inputs" in ama("inputs", "list", cwd=m).stdout

    added = as_json("inputs", "add", "datasets/1/0.0.0", "--label", "training-data", cwd=m)
    assert added["action"] == "added"
    assert added["input"] == {"name": "datasets/1/0.0.0", "manifest": data["manifest"],
                              "label": "training-data"}
    # An alias and "the latest version" are recorded by ordinal and number.
    assert ama("inputs", "add", "datasets/tiny", "--label", "validation", cwd=m).stdout == \
        "added input datasets/1/0.0.1 (validation)\n"
    assert as_json("inputs", "add", "datasets/tiny/0.0.1", "--label", "eval", cwd=m
                   )["action"] == "relabelled"
    doc = json.loads((m / ".ama" / "inputs").read_text())
    assert doc == {"format": "ama-inputs/1", "inputs": [
        {"label": "training-data", "manifest": data["manifest"], "name": "datasets/1/0.0.0"},
        {"label": "eval", "manifest": data2["manifest"], "name": "datasets/1/0.0.1"}]}
    assert staged(Asset.open(m)) == [Input(data["manifest"], "datasets/1/0.0.0", "training-data"),
                                     Input(data2["manifest"], "datasets/1/0.0.1", "eval")]
    listing = ama("inputs", "list", cwd=m).stdout
    assert "+ datasets/1/0.0.0\ttraining-data" in listing

    before = (m / ".ama" / "inputs").read_bytes()
    ama("inputs", "add", "datasets/1/7.0.0", "--label", "x", cwd=m, code=3)
    ama("inputs", "add", "datasets/1/0.0.0", cwd=m, code=2)  # no --label
    ama("inputs", "add", "datasets/1/0.0.0", "--label", " ", cwd=m, code=2)
    ama("inputs", "add", "datasets", "--label", "x", cwd=m, code=2)
    ama("inputs", "remove", "datasets/1/0.0.9", cwd=m, code=3)
    ama("inputs", "remove", "datasets/1", cwd=m, code=2)
    assert (m / ".ama" / "inputs").read_bytes() == before
    ama("inputs", "add", "datasets/1/0.0.0", "--label", "x", cwd=tmp_path, code=3)

    assert as_json("inputs", "remove", "datasets/tiny/0.0.1", cwd=m)["inputs"] == [
        {"label": "training-data", "manifest": data["manifest"], "name": "datasets/1/0.0.0"}]

    # A version made from datasets/1/0.0.0 lists it as an input, and that data set's
    # directory lists the model among its dependents.
    model = publish(local, "default", "ml-models", {"w": b"w"},
                    inputs=tuple(staged(Asset.open(m))))
    d = holding(tmp_path, data, "d")
    assert as_json("inputs", "list", cwd=d)["dependents"] == [
        {"name": "ml-models/1", "version": "0.0.0", "manifest": model["manifest"],
         "label": "training-data"}]
    assert "ml-models/1/0.0.0\ttraining-data" in ama("inputs", "list", cwd=d).stdout
    assert as_json("inputs", "list", "--local", cwd=d)["dependents"] == []
    shown = as_json("info", "ml-models/1", cwd=tmp_path)
    assert shown["inputs"] == [{"label": "training-data", "manifest": data["manifest"],
                                "name": "datasets/1/0.0.0"}]
    assert [x["name"] for x in as_json("info", "datasets/1/0.0.0", cwd=tmp_path)["dependents"]
            ] == ["ml-models/1"]

    # A directory holding the model carries its inputs over to the next upload.
    mm = holding(tmp_path, model, "mm")
    listed = as_json("inputs", "list", cwd=mm)
    assert listed["staged"] == listed["recorded"] and listed["added"] == []
    assert not (mm / ".ama" / "inputs").exists()
    ama("inputs", "remove", "datasets/1/0.0.0", cwd=mm)
    assert staged(Asset.open(mm)) == []
    assert [i["name"] for i in as_json("inputs", "list", cwd=mm)["removed"]] == [
        "datasets/1/0.0.0"]


def test_completion_scripts_complete_commands_and_classes(tmp_path: Path) -> None:
    ama("class", "init", "ml-models", cwd=tmp_path)
    for shell in ("bash", "zsh"):
        script = ama("completion", shell, cwd=tmp_path).stdout
        assert "_AMA_COMPLETE" in script and f"{shell}_complete" in script
    assert 'eval "$(ama completion bash)"' in ama("completion", "--help", cwd=tmp_path).stdout
    ama("completion", "tcsh", cwd=tmp_path, code=2)

    def complete(words: str, cwd: Path = tmp_path) -> list[str]:
        env = {"_AMA_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        out = ama(cwd=cwd, env=env).stdout
        return [line.split(",", 1)[1] for line in out.splitlines() if line]

    assert complete("ama li") == ["list"]
    assert "inputs" in complete("ama in")
    assert complete("ama inputs ") == ["add", "list", "remove"]
    assert complete("ama list --class ml") == ["ml-models"]
    assert complete("ama find --cl") == ["--class"]
    assert complete("ama class info ml") == ["ml-models"]
    assert complete("ama init m") == ["ml-models"]
    # Asset names and versions, from what this machine has seen of the remote.
    m = tmp_path / "m"
    m.mkdir()
    (m / "a.txt").write_text("a")
    ama("init", "ml-models", cwd=m)
    ama("add", ".", cwd=m)
    ama("upload", "-m", "one", cwd=m)
    (m / "a.txt").write_text("b")
    ama("update", "a.txt", cwd=m)
    ama("upload", "-m", "two", cwd=m)
    assert complete("ama clone ml") == ["ml-models/"]
    assert complete("ama clone ml-models/") == ["ml-models/1"]
    assert complete("ama versions ml-models/1/") == ["ml-models/1/0.0.0", "ml-models/1/0.0.1"]
    assert complete("ama info ml-models/1/0.0.1") == ["ml-models/1/0.0.1"]
    assert complete("ama inputs add ml-models/1/0") == ["ml-models/1/0.0.0", "ml-models/1/0.0.1"]
    assert complete("ama switch ", cwd=m) == ["0.0.0", "0.0.1"]
    assert complete("ama diff 0.0.", cwd=m) == ["0.0.0", "0.0.1"]
    assert complete("ama switch ", cwd=tmp_path) == []  # not an asset directory: nothing
    if shutil.which("bash"):
        # The script bash would source defines the completion function and registers it.
        script = ama("completion", "bash", cwd=tmp_path).stdout
        done = subprocess.run(["bash", "-c", script + "\ncomplete -p ama"], capture_output=True,
                              text=True, timeout=30)
        assert "_ama_completion" in done.stdout, done.stderr


def test_metadata_verbs_against_ama_server(tmp_path: Path,
                                           start_ama_server: Callable[..., RunningServer]
                                           ) -> None:
    server = start_ama_server()
    env = {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project}
    ama("remote", "add", "team", server.url, cwd=tmp_path)
    transport = HttpTransport(server.url, token=server.token)
    transport.put_class(server.project, "ml-models")
    v1 = publish(transport, server.project, "ml-models", {"w": b"weights", "c": {"x": b"x"}})
    v2 = publish(transport, server.project, "ml-models", {"w": b"weights2", "c": {"x": b"x"}},
                 asset=1, parent=v1["manifest"], message="retrained")

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        return ama(*args, "--remote", "team", cwd=tmp_path, env=env, code=code)

    assert json.loads(run("list", "ml-models", "--json").stdout)[0]["latest"] == "0.0.1"
    assert run("find", "--class", "ml-models", "--hash", v1["tree"]).stdout.startswith(
        "ml-models/1/0.0.0\t")
    assert json.loads(run("find", "--size", "ml-models/1", "--json").stdout)["bytes"] == 9
    (tmp_path / "w").write_bytes(b"weights2")
    assert run("find", "--file", "w").stdout == f"ml-models/1/0.0.1\t{v2['tree']}\tw\n"
    run("alias", "add", "prod", "--asset", "ml-models/1")
    run("asset", "set", "--asset", "ml-models/prod", "--title", "Served", "--tag", "live")
    shown = json.loads(run("info", "ml-models/prod", "--json").stdout)
    assert (shown["asset"]["title"], shown["asset"]["tags"], shown["hash"]) == (
        "Served", ["live"], v2["tree"])
    # Errors from the server keep their exit codes.
    run("info", "ml-models/5", code=3)
    ama("list", "ml-models", "--remote", "team", cwd=tmp_path,
        env={**env, "AMA_TOKEN": "not-a-token"}, code=4)


def test_lineage_aliases_and_hash_with_the_real_upload_and_clone(tmp_path: Path) -> None:
    for cls in ("datasets", "ml-models"):
        ama("class", "init", cls, cwd=tmp_path)
    d, m = tmp_path / "d", tmp_path / "m"
    for root, cls, name in ((d, "datasets", "d.csv"), (m, "ml-models", "w.bin")):
        root.mkdir()
        ama("init", cls, cwd=root)
        (root / name).write_bytes(b"1,2\n" if cls == "datasets" else b"weights")
        ama("add", ".", cwd=root)
    ama("upload", "-m", "data", cwd=d)
    ama("alias", "add", "tiny", cwd=d)
    ama("inputs", "add", "datasets/tiny/0.0.0", "--label", "training-data", cwd=m)
    ama("upload", "-m", "model", cwd=m)
    # The upload recorded the staged input and took the staged file away.
    assert not (m / ".ama" / "inputs").exists()
    shown = as_json("info", cwd=m)
    assert shown["message"] == "model" and [i["name"] for i in shown["inputs"]] == [
        "datasets/1/0.0.0"]
    assert "ml-models/1/0.0.0\ttraining-data" in ama("inputs", "list", cwd=d).stdout

    ama("clone", "ml-models/1", cwd=tmp_path)
    clone = tmp_path / "ml-models" / "1"
    assert ama("info", "--hash", cwd=clone).stdout == ama("info", "--hash", cwd=m).stdout
    listed = as_json("inputs", "list", cwd=clone)
    assert [i["name"] for i in listed["staged"]] == ["datasets/1/0.0.0"] and not listed["added"]
    found = as_json("find", "--class", "ml-models", "--hash",
                    ama("info", "--hash", cwd=m).stdout.strip(), cwd=tmp_path)
    assert [(f["name"], f["version"]) for f in found] == [("ml-models/1", "0.0.0")]
