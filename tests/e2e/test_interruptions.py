"""Killing an upload, a download and a switch part-way (SIGKILL once some objects moved),
running the command again, and comparing the result with an uninterrupted run byte for
byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ama.plumbing import pack
from tests.e2e.test_lifecycle import AMA, ama, files

FOLDERS = 15
PER_FOLDER = 100


def count_files(root: Path) -> int:
    return sum(len(names) for _dir, _dirs, names in os.walk(root)) if root.exists() else 0


def _members(path: Path) -> int:
    """How many objects the pack file at ``path`` holds."""
    with open(path, "rb") as f:
        return len(pack.read_index(f, path.parent.name + path.name))


def kill_when(args: list[str], cwd: Path, env: dict[str, str],
              ready: Callable[[], bool]) -> None:
    """Run ``ama ARGS`` and SIGKILL it as soon as ``ready()``; fail if it ends first."""
    proc = subprocess.Popen([AMA, *args], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (
        f"ama {' '.join(args)} finished before it could be interrupted "
        f"(exit {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''})")


def make_data(root: Path, tag: str) -> None:
    for f in range(FOLDERS):
        folder = root / f"d{f:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(PER_FOLDER):
            (folder / f"{n:03d}.bin").write_bytes(f"{tag} {f} {n}\n".encode() + os.urandom(2000))


def data_asset(root: Path, env: dict[str, str]) -> Path:
    """The class ``data`` and its asset directory ``root/m`` holding :func:`make_data`'s
    files (not staged yet); return the directory."""
    ama("class", "init", "data", cwd=root, env=env)
    m = root / "m"
    m.mkdir()
    ama("init", "data", cwd=m, env=env)
    make_data(m, "v0")
    return m


def test_kill_upload_download_and_switch(tmp_path: Path) -> None:
    alice_home = tmp_path / "alice"
    alice = {"AMA_HOME": str(alice_home)}
    m = data_asset(tmp_path, alice)
    ama("add", ".", cwd=m, env=alice)
    storage = alice_home / "remote" / "storage"

    # Upload, its small objects in packs of 64 KiB (a few dozen objects each): killed once
    # 10 packs reached the remote, then run again.
    packs = {**alice, "AMA_PACK_BYTES": str(64 << 10)}
    kill_when(["upload", "-m", "first"], m, packs,
              lambda: count_files(storage / "packs") >= 10)
    assert (m / ".ama" / "upload").exists()
    assert len(os.listdir(alice_home / "uploads")) == 1
    arrived = sum(_members(path) for path in (storage / "packs").rglob("*")
                  if path.is_file() and len(path.parent.name + path.name) == 64)
    resumed = json.loads(ama("upload", "-m", "first", "--json", cwd=m, env=packs).stdout)
    assert (resumed["name"], resumed["version"]) == ("data/1", "0.0.0")
    # The objects of packs stored but not yet checked when the kill came (four packs in
    # flight at most) are sent again; every other one is skipped.
    assert arrived > 0
    assert resumed["objects_sent"] <= resumed["objects_total"] - arrived + 4 * 64
    assert not (m / ".ama" / "upload").exists() and os.listdir(alice_home / "uploads") == []
    v0 = files(m)
    listed = json.loads(ama("versions", "--json", cwd=m, env=alice).stdout)
    assert [v["version"] for v in listed] == ["0.0.0"]
    # The same files uploaded without interruption make the same asset hash.
    ref = {"AMA_HOME": str(tmp_path / "ref")}
    ama("class", "init", "data", cwd=tmp_path, env=ref)
    r = tmp_path / "r"
    shutil_copy(m, r)
    ama("init", "data", cwd=r, env=ref)
    ama("add", ".", cwd=r, env=ref)
    ama("upload", "-m", "first", cwd=r, env=ref)
    assert (tree_of(r, ref) == tree_of(m, alice))

    # A second version where every file changed.
    for path in sorted(m.rglob("*.bin")):
        path.write_bytes(b"v1 " + path.read_bytes())
    ama("add", ".", cwd=m, env=alice)
    ama("upload", "-m", "second", cwd=m, env=alice)
    v1 = files(m)

    # Download: a clone on another machine killed once 100 objects arrived; download
    # completes it.
    bob_home = tmp_path / "bob"
    bob = {"AMA_HOME": str(bob_home)}
    ama("remote", "add", "team", (alice_home / "remote").as_uri(), cwd=tmp_path, env=bob)
    ama("remote", "default", "team", cwd=tmp_path, env=bob)
    c = tmp_path / "c"
    kill_when(["clone", "data/1", "-d", str(c)], tmp_path, bob,
              lambda: count_files(bob_home / "objects") >= 100)
    assert files(c) != v1
    ama("download", cwd=c, env=bob)
    assert files(c) == v1
    assert json.loads(ama("status", "--json", cwd=c, env=bob).stdout)["uploaded"] is True

    # Switch: killed once it started moving files; run again, it completes.
    before = count_files(bob_home / "objects")
    kill_when(["switch", "--version", "0.0.0"], c, bob,
              lambda: (c / ".ama" / "switch").exists()
              and count_files(bob_home / "objects") >= before + 100)
    assert json.loads(ama("status", "--json", cwd=c, env=bob).stdout)["version"] == "0.0.1"
    ama("switch", "--version", "0.0.0", cwd=c, env=bob)
    assert files(c) == v0
    status = json.loads(ama("status", "--json", cwd=c, env=bob).stdout)
    assert status["version"] == "0.0.0" and status["uploaded"] is True
    assert not (c / ".ama" / "switch").exists()
    # An uninterrupted clone of 0.0.0 holds the same bytes.
    ama("clone", "data/1/0.0.0", "-d", str(tmp_path / "fresh"), cwd=tmp_path, env=bob)
    assert files(tmp_path / "fresh") == files(c)


def shutil_copy(src: Path, dest: Path) -> None:
    import shutil

    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ama"))


def tree_of(root: Path, env: dict[str, str]) -> str:
    """The asset hash (root tree id) of the version ``root`` holds."""
    manifest = json.loads((root / ".ama" / "HEAD").read_text())["manifest"]
    data = (Path(env["AMA_HOME"]) / "objects" / manifest[:2] / manifest[2:]).read_bytes()
    tree: str = json.loads(data)["tree"]
    return tree
