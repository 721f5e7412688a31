"""The asset lifecycle through the installed ``ama`` against the embedded ``file://`` remote:
the newcomer's first five minutes, two users racing to upload, and bad inputs that change
nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.services.inprocess import in_process

AMA = shutil.which("ama", path=os.path.dirname(sys.executable)) or "ama"


def ama(*args: str, cwd: Path, code: int = 0, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def prepare(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    """``ama ARGS`` run in this process (:func:`in_process`) with ``env``, in ``cwd``: for the
    set-up of a scenario (its remotes and classes), which the scenario's own commands then
    use through the installed ``ama``."""
    from ama.cli.main import cli

    in_process(cli, env or {}, cwd, *args)


def two_machines(tmp_path: Path, name: str, url: str, env: dict[str, str]
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """Two asset stores (two machines: ``env`` and another home) whose default remote is
    ``name`` at ``url``, with class ml-models on it; returns the two environments. Set up
    in this process (:func:`prepare`)."""
    other = {**env, "AMA_HOME": str(tmp_path / "other-home")}
    for where in (env, other):
        prepare("remote", "add", name, url, cwd=tmp_path, env=where)
        prepare("remote", "default", name, cwd=tmp_path, env=where)
    prepare("class", "init", "ml-models", cwd=tmp_path, env=env)
    return env, other


def files(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` outside ``.ama/``, by path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".ama" not in p.relative_to(root).parts}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file below ``root``, ``.ama/`` included."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_newcomer_flow(tmp_path: Path) -> None:
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    (m / "weights.bin").write_bytes(os.urandom(20000))
    (m / "conf").mkdir()
    (m / "conf" / "train.yaml").write_text("lr: 0.1\n")
    ama("add", ".", cwd=m)
    assert "new:      weights.bin" in ama("status", cwd=m).stdout
    first = ama("upload", "-m", "first", cwd=m).stdout
    assert first.splitlines() == ["ml-models/1", "version 0.0.0"]
    v0 = files(m)
    (m / "conf" / "train.yaml").write_text("lr: 0.01\n")
    assert json.loads(ama("status", "--json", cwd=m).stdout)["modified"] == ["conf/train.yaml"]
    ama("update", "conf/train.yaml", cwd=m)
    assert ama("upload", "-m", "second", cwd=m).stdout.splitlines() == ["ml-models/1",
                                                                       "version 0.0.1"]
    again = ama("upload", "-m", "third", cwd=m).stdout
    assert "Nothing to upload" in again and "no version was made" in again
    v1 = files(m)
    status = json.loads(ama("status", "--json", cwd=m).stdout)
    assert status["asset"] == "ml-models/1" and status["version"] == "0.0.1"
    assert status["uploaded"] is True

    assert ama("clone", "ml-models/1", cwd=tmp_path).stdout.strip() == str(
        tmp_path / "ml-models" / "1")
    clone = tmp_path / "ml-models" / "1"
    assert files(clone) == v1
    listed = json.loads(ama("versions", "--json", cwd=clone).stdout)
    assert [(v["version"], v["message"], v["current"]) for v in listed] == [
        ("0.0.0", "first", False), ("0.0.1", "second", True)]
    human = ama("versions", cwd=clone).stdout.splitlines()
    assert human[1].startswith("* 0.0.1")
    switched = json.loads(ama("switch", "0.0.0", "--json", cwd=clone).stdout)
    assert switched["written"] == ["conf/train.yaml"] and switched["deleted"] == []
    assert files(clone) == v0
    assert json.loads(ama("status", "--json", cwd=clone).stdout)["version"] == "0.0.0"
    history = json.loads(ama("history", "--json", cwd=clone).stdout)
    assert [(h["version"], [(c["status"], c["path"]) for c in h["changes"]])
            for h in history] == [
        ("0.0.1", [("M", "conf/train.yaml")]),
        ("0.0.0", [("A", "conf/train.yaml"), ("A", "weights.bin")])]
    # A soft clone has the metadata only; download brings the bytes.
    soft = tmp_path / "soft"
    ama("clone", "ml-models/1/0.0.0", "-d", str(soft), "--soft", cwd=tmp_path)
    assert files(soft) == {}
    got = json.loads(ama("download", "conf/", "--json", cwd=soft).stdout)
    assert got["placed"] == ["conf/train.yaml"]
    ama("download", cwd=soft)
    assert files(soft) == v0
    fetched = json.loads(ama("fetch", "--all", "--json", cwd=tmp_path).stdout)
    assert fetched["assets"] == [{"name": "ml-models/1", "versions": ["0.0.0", "0.0.1"],
                                  "latest": "0.0.1"}]


def test_switch_moves_only_differing_files_and_keeps_changes(tmp_path: Path) -> None:
    ama("class", "init", "data", cwd=tmp_path)
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    ama("init", "data", cwd=a)
    for n in range(20):
        (a / "sub" / f"{n}.txt").write_text(f"file {n}\n")
    ama("add", ".", cwd=a)
    ama("upload", "-m", "twenty", cwd=a)
    (a / "sub" / "3.txt").write_text("changed\n")
    (a / "sub" / "4.txt").unlink()
    (a / "new.txt").write_text("new\n")
    ama("add", ".", cwd=a)
    ama("upload", "-m", "changed", cwd=a)
    untouched = (a / "sub" / "7.txt").stat()
    (a / "untracked.log").write_text("mine\n")
    result = json.loads(ama("switch", "--version", "0.0.0", "--json", cwd=a).stdout)
    assert result["written"] == ["sub/3.txt", "sub/4.txt"] and result["deleted"] == ["new.txt"]
    assert (a / "sub" / "7.txt").stat().st_ino == untouched.st_ino
    assert (a / "untracked.log").read_text() == "mine\n"
    # A change that is not uploaded is refused, and nothing moves.
    (a / "sub" / "5.txt").write_text("local edit\n")
    before = snapshot(a)
    err = ama("switch", "--version", "0.0.1", cwd=a, code=1).stderr
    assert "sub/5.txt" in err and "--force" in err
    assert snapshot(a) == before
    ama("switch", "--version", "0.0.1", "--force", cwd=a)
    assert (a / "sub" / "5.txt").read_text() == "file 5\n"
    assert (a / "new.txt").read_text() == "new\n"


def test_switch_in_a_hardlinked_clone_moves_only_differing_files(tmp_path: Path) -> None:
    """In a clone whose files are hard links into the store (read-only, mode 0444), a
    switch places only the files whose bytes differ, as read-only links again."""
    home = {"AMA_HOME": str(tmp_path / "home")}
    ama("config", "set", "link.strategy", "hardlink", cwd=tmp_path, env=home)
    ama("class", "init", "data", cwd=tmp_path, env=home)
    a = tmp_path / "a"
    (a / "d").mkdir(parents=True)
    ama("init", "data", cwd=a, env=home)
    for n in range(30):
        (a / "d" / f"{n:02d}.bin").write_bytes(f"file {n}\n".encode())
    ama("add", ".", cwd=a, env=home)
    ama("upload", "-m", "first", cwd=a, env=home)
    for n in (3, 17):
        (a / "d" / f"{n:02d}.bin").unlink()
        (a / "d" / f"{n:02d}.bin").write_bytes(b"changed\n")
    ama("add", ".", cwd=a, env=home)
    ama("upload", "-m", "second", cwd=a, env=home)
    c = tmp_path / "c"
    ama("clone", "data/1", "-d", str(c), cwd=tmp_path, env=home)
    assert files(c) == files(a)
    assert not (c / "d" / "00.bin").stat().st_mode & 0o222
    result = json.loads(ama("switch", "--version", "0.0.0", "--json", cwd=c, env=home).stdout)
    assert result["written"] == ["d/03.bin", "d/17.bin"] and result["deleted"] == []
    assert (c / "d" / "03.bin").read_bytes() == b"file 3\n"
    placed = (c / "d" / "03.bin").stat()
    assert placed.st_nlink >= 2 and not placed.st_mode & 0o222
    back = json.loads(ama("switch", "--version", "0.0.1", "--json", cwd=c, env=home).stdout)
    assert back["written"] == ["d/03.bin", "d/17.bin"]
    assert files(c) == files(a)
    assert json.loads(ama("status", "--json", cwd=c, env=home).stdout)["uploaded"] is True


def test_two_users_race_to_upload(tmp_path: Path) -> None:
    """Two users with their own asset stores share one folder remote; both change the same
    version and upload at once: one wins, the other is told to fetch and switch."""
    shared_home = tmp_path / "alice-home"
    alice = {"AMA_HOME": str(shared_home)}
    ama("class", "init", "ml-models", cwd=tmp_path, env=alice)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m, env=alice)
    (m / "a.txt").write_text("a\n")
    ama("add", ".", cwd=m, env=alice)
    ama("upload", "-m", "first", cwd=m, env=alice)
    bob = {"AMA_HOME": str(tmp_path / "bob-home")}
    ama("remote", "add", "team", (shared_home / "remote").as_uri(), cwd=tmp_path, env=bob)
    ama("remote", "default", "team", cwd=tmp_path, env=bob)
    ama("clone", "ml-models/1", "-d", "bob", cwd=tmp_path, env=bob)
    ama("clone", "ml-models/1", "-d", "alice", cwd=tmp_path, env=alice)
    procs = []
    for who, env in (("alice", alice), ("bob", bob)):
        d = tmp_path / who
        (d / "a.txt").write_text(f"{who}\n")
        ama("update", "a.txt", cwd=d, env=env)
        procs.append(subprocess.Popen([AMA, "upload", "-m", who], cwd=d, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env={**os.environ, **env}))
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read())  # type: ignore[union-attr]
               for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert "has moved on" in loser[2] and "ama fetch" in loser[2] and "ama switch" in loser[2]
    winner = next(r for r in results if r[0] == 0)
    assert "version 0.0.1" in winner[1]
    listed = json.loads(ama("versions", "ml-models/1", "--json", cwd=tmp_path, env=bob).stdout)
    assert [v["version"] for v in listed] == ["0.0.0", "0.0.1"]


def test_bad_inputs_change_nothing(tmp_path: Path) -> None:
    home = Path(os.environ["AMA_HOME"])
    ama("class", "init", "ml-models", cwd=tmp_path)
    assert "already exists" in ama("class", "init", "ml-models", cwd=tmp_path, code=1).stderr
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    err = ama("upload", "-m", "empty", cwd=m, code=1).stderr
    assert "nothing is staged" in err and "ama add" in err
    (m / "a.txt").write_text("a\n")
    ama("add", ".", cwd=m)
    before_home = snapshot(home)
    before_dir = snapshot(m)
    ama("upload", "-m", "x", "--bump", "huge", cwd=m, code=2)
    ama("upload", "-m", "", cwd=m, code=2)
    (tmp_path / "meta.json").write_text("[1, 2]")
    assert "JSON object" in ama("upload", "-m", "x", "--metadata", str(tmp_path / "meta.json"),
                                cwd=m, code=2).stderr
    ama("upload", "-m", "x", "--metadata", str(tmp_path / "none.json"), cwd=m, code=3)
    ama("versions", cwd=m, code=3)
    ama("switch", "--version", "0.0.0", cwd=m, code=3)
    for name, code in (("ml-models", 2), ("ml-models/01", 2), ("Bad/1", 2),
                       ("ml-models/1/0.0", 2), ("ml-models/7", 3), ("nope/1", 3)):
        ama("clone", name, cwd=tmp_path, code=code)
    ama("remote", "add", "x", "ftp://host", cwd=tmp_path, code=2)
    ama("remote", "add", "Bad Name", "https://host", cwd=tmp_path, code=2)
    ama("remote", "remove", "local", cwd=tmp_path, code=2)
    ama("remote", "default", "nope", cwd=tmp_path, code=3)
    ama("project", "activate", "nope", cwd=tmp_path, code=3)
    assert snapshot(home) == before_home
    assert snapshot(m) == before_dir
    assert not (tmp_path / "ml-models").exists()
    # After a first upload: a version that does not exist, a malformed one, a taken folder.
    ama("upload", "-m", "first", cwd=m)
    ama("switch", "--version", "9.9.9", cwd=m, code=3)
    ama("switch", "--version", "v1", cwd=m, code=2)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("keep")
    assert "not an empty directory" in ama("clone", "ml-models/1", "-d", str(taken),
                                           cwd=tmp_path, code=1).stderr
    assert snapshot(taken) == {"keep.txt": b"keep"}


def test_class_rules_are_checked_before_sending(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"required_files": ["README.md"], "max_file_size": 10}))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["accuracy"]}))
    ama("class", "init", "strict", "--rules", str(rules), "--schema", str(schema), cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "strict", cwd=m)
    (m / "big.bin").write_bytes(b"x" * 100)
    ama("add", ".", cwd=m)
    storage = Path(os.environ["AMA_HOME"]) / "remote" / "storage"
    err = ama("upload", "-m", "bad", cwd=m, code=1).stderr
    assert "required_files: no file matches 'README.md'" in err
    assert "max_file_size: big.bin is 100 bytes, over 10" in err
    assert "schema: metadata (root): 'accuracy' is a required property" in err
    assert not storage.exists() or not any(p.is_file() for p in storage.rglob("*"))
    (m / "big.bin").write_bytes(b"small")
    (m / "README.md").write_text("hi")
    ama("add", ".", cwd=m)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"accuracy": 0.9}))
    assert "version 0.0.0" in ama("upload", "-m", "ok", "--metadata", str(meta), cwd=m).stdout


def test_upload_dates_its_manifest_by_ama_author_date(tmp_path: Path) -> None:
    """AMA_AUTHOR_DATE fixes an upload's manifest time, as it does commit-manifest's: the
    same files uploaded twice with the same date make the same manifest id."""
    date = {"AMA_AUTHOR_DATE": "2026-01-02T03:04:05Z"}
    made = []
    for name in ("one", "two"):
        env = {**date, "AMA_HOME": str(tmp_path / name / "home")}
        m = tmp_path / name / "m"
        m.mkdir(parents=True)
        ama("class", "init", "data", cwd=m, env=env)
        ama("init", "data", cwd=m, env=env)
        (m / "a.txt").write_text("a\n")
        ama("add", ".", cwd=m, env=env)
        made.append(json.loads(ama("upload", "-m", "first", "--json", cwd=m, env=env
                                   ).stdout)["manifest"])
        shown = json.loads(ama("cat-object", "-p", made[-1], cwd=m, env=env).stdout)
        assert shown["created"] == "2026-01-02T03:04:05Z"
    assert made[0] == made[1]
    bad = {**date, "AMA_HOME": str(tmp_path / "one" / "home"), "AMA_AUTHOR_DATE": "soon"}
    (tmp_path / "one" / "m" / "a.txt").write_text("b\n")
    ama("add", ".", cwd=tmp_path / "one" / "m", env=bad)
    assert "AMA_AUTHOR_DATE" in ama("upload", "-m", "second", cwd=tmp_path / "one" / "m",
                                    env=bad, code=2).stderr


def test_what_others_wrote_cannot_drive_the_terminal(tmp_path: Path) -> None:
    # A version's message is anyone's text: its escape sequences are shown, not sent.
    ama("class", "init", "data", cwd=tmp_path)
    a = tmp_path / "a"
    a.mkdir()
    ama("init", "data", cwd=a)
    (a / "f.txt").write_text("f")
    ama("add", ".", cwd=a)
    ama("upload", "-m", "tidy\x1b]0;owned\x07\x1b[2J", cwd=a)
    for command in (["history"], ["versions"], ["info"]):
        out = ama(*command, cwd=a).stdout
        assert "\x1b" not in out and "\x07" not in out, (command, out)
        assert "tidy\\x1b]0;owned\\x07\\x1b[2J" in out, (command, out)
