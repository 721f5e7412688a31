"""Every kind of object (blob, tree, manifest) damaged where it is kept (the client's asset
store, the embedded ``file://`` remote's storage, an ama-server's ``file://`` storage and
its S3 storage on moto) by a flipped byte, a truncation or a swap with another object:
the command that reads it fails naming the object, no wrong byte reaches a work tree or
another store, the checks (``ama fsck``, ``ama store verify``, ``ama-server fsck``) list it,
and where a good copy exists elsewhere the damaged one is replaced from it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ama.plumbing import pack
from tests.e2e.test_lifecycle import AMA, files
from tests.services.inprocess import in_process
from tests.services.server import RunningServer, run_ama_server

KINDS = ("blob", "tree", "manifest")
DAMAGES = ("flip", "truncate", "swap")
CASES = [(kind, damage) for kind in KINDS for damage in DAMAGES]


def run(*args: str, cwd: Path, home: Path, code: int | None = 0
        ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AMA_HOME": str(home)})
    if code is not None:
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


def prepare(*args: str, cwd: Path, home: Path) -> str:
    """``ama ARGS`` run in this process (:func:`in_process`), as ``home``, in ``cwd``; its
    stdout. For making the cases (init, add, upload: nine of each per test). What meets the
    damage (clone, download, fsck, store verify) always runs the installed ``ama``."""
    from ama.cli.main import cli

    return in_process(cli, {"AMA_HOME": str(home)}, cwd, *args)


def content(kind: str, damage: str) -> dict[str, bytes]:
    """An asset of its own for each case: a file at the root and one in a folder."""
    return {"top.txt": f"top of {kind} {damage}\n".encode() * 50,
            "sub/low.txt": f"low of {kind} {damage}\n".encode() * 70}


@dataclass
class Uploaded:
    name: str  # class/ordinal
    files: dict[str, bytes]
    target: str  # the object to damage
    partner: str  # the object it is swapped with


def upload_case(tmp_path: Path, home: Path, kind: str, damage: str) -> Uploaded:
    """Upload the case's asset from ``home``; return it with the ids to damage."""
    folder = tmp_path / f"src-{kind}-{damage}"
    for rel, data in content(kind, damage).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    prepare("init", "data", cwd=folder, home=home)
    prepare("add", ".", cwd=folder, home=home)
    name = prepare("upload", "-m", f"{kind} {damage}", cwd=folder, home=home).split()[0]
    manifest = json.loads((folder / ".ama" / "HEAD").read_text())["manifest"]
    store = folder_place(home / "objects")
    root = json.loads(store.read(manifest))["tree"]
    listed = tree_ids(store.read(root))
    low = tree_ids(store.read(listed["sub"]))["low.txt"]
    target, partner = {
        "blob": (listed["top.txt"], low),
        "tree": (listed["sub"], root),
        "manifest": (manifest, root),
    }[kind]
    return Uploaded(name, files(folder), target, partner)


def tree_ids(data: bytes) -> dict[str, str]:
    """Name → id of a tree's entries (``<type> <id> <size>\t<name>`` lines)."""
    return {line.partition("\t")[2]: line.split()[1]
            for line in data.decode().splitlines()[1:]}


def damaged(data: bytes, partner: bytes, damage: str) -> bytes:
    if damage == "flip":
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:]
    if damage == "truncate":
        return data[: len(data) - 7]
    return partner


class Place:
    """Where objects are kept, by id: read and write their bytes; ``packs(id)`` names the
    packs that hold an object."""

    def __init__(self, read: Callable[[str], bytes], write: Callable[[str, bytes], None],
                 packs: Callable[[str], list[str]] = lambda oid: []):
        self.read, self.write, self.packs = read, write, packs

    def damage(self, case: Uploaded, damage: str) -> tuple[bytes, bytes]:
        """Damage ``case.target`` here (a swap damages its partner too); return the good
        bytes of the target and of the partner."""
        good = self.read(case.target)
        other = self.read(case.partner)
        self.write(case.target, damaged(good, other, damage))
        if damage == "swap":
            self.write(case.partner, good)
        return good, other


def packed(place: Place, keys: Callable[[], list[str]], read_key: Callable[[str], bytes],
           write_key: Callable[[str, bytes], None]) -> Place:
    """``place`` for loose objects, and the members of the packs (ama-format(5) PACKS) at
    ``keys()`` for the rest: a member's bytes are spliced into its pack where its index
    says, so damage to a member is damage to the pack's bytes, as on a storage's disk."""
    def find(oid: str) -> tuple[str, pack.Member] | None:
        for key in keys():
            members = pack.read_index(io.BytesIO(read_key(key)), key)
            for m in members:
                if m.id == oid:
                    return key, m
        return None

    def read(oid: str) -> bytes:
        where = find(oid)
        if where is None:
            return place.read(oid)
        key, m = where
        return read_key(key)[m.offset:m.offset + m.length]

    def write(oid: str, data: bytes) -> None:
        where = find(oid)
        if where is None:
            place.write(oid, data)
            return
        key, m = where
        whole = read_key(key)
        write_key(key, whole[:m.offset] + data + whole[m.offset + m.length:])

    def packs(oid: str) -> list[str]:
        where = find(oid)
        return [] if where is None else ["".join(where[0].split("/")[-2:])]

    return Place(read, write, packs)


def folder_place(objects: Path) -> Place:
    def path(oid: str) -> Path:
        return objects / oid[:2] / oid[2:]

    def write(oid: str, data: bytes) -> None:
        p = path(oid)
        p.chmod(0o644)  # objects are read-only
        p.write_bytes(data)
        p.chmod(0o444)

    def write_key(key: str, data: bytes) -> None:
        p = objects.parent / key
        p.chmod(0o644)
        p.write_bytes(data)
        p.chmod(0o444)

    return packed(Place(lambda oid: path(oid).read_bytes(), write),
                  lambda: [p.relative_to(objects.parent).as_posix()
                           for p in sorted((objects.parent / "packs").rglob("*"))
                           if p.is_file()],
                  lambda key: (objects.parent / key).read_bytes(), write_key)


def s3_place(bucket: object, prefix: str) -> Place:
    client = bucket.client  # type: ignore[attr-defined]
    name = bucket.name  # type: ignore[attr-defined]

    def key(oid: str) -> str:
        return f"{prefix}/objects/{oid[:2]}/{oid[2:]}"

    def keys() -> list[str]:
        listed = client.list_objects_v2(Bucket=name, Prefix=f"{prefix}/packs/")
        return sorted(item["Key"] for item in listed.get("Contents", []))

    return packed(
        Place(lambda oid: client.get_object(Bucket=name, Key=key(oid))["Body"].read(),
              lambda oid, data: client.put_object(Bucket=name, Key=key(oid), Body=data)),
        keys, lambda k: client.get_object(Bucket=name, Key=k)["Body"].read(),
        lambda k, data: client.put_object(Bucket=name, Key=k, Body=data))


def no_wrong_bytes(root: Path, want: dict[str, bytes]) -> None:
    """Every file in ``root`` (if any) is one of the version's files with its own bytes."""
    if root.exists():
        for rel, data in files(root).items():
            assert want.get(rel) == data, f"{rel} holds bytes that are not the version's"


def store_clean(home: Path) -> None:
    fsck = run("fsck", cwd=home.parent, home=home, code=None)
    assert (fsck.returncode, fsck.stdout) == (0, ""), fsck.stdout


# -- the client's asset store ----------------------------------------------------------------


def test_damaged_in_the_asset_store(tmp_path: Path) -> None:
    """The embedded remote holds a good copy of each damaged object: the clone that meets
    one fails naming it and places nothing wrong; fsck and store verify list them all;
    repaired from the remote ('ama download -f' in a clone that got as far as the files,
    'ama store verify --repair' for the rest), every clone is whole and the store clean."""
    home = tmp_path / "home"
    run("class", "init", "data", cwd=tmp_path, home=home)
    place = folder_place(home / "objects")
    cases = {(kind, damage): upload_case(tmp_path, home, kind, damage)
             for kind, damage in CASES}
    good = {}
    for (_kind, damage), case in cases.items():
        good[case.target], good[case.partner] = place.damage(case, damage)
    fsck = run("fsck", cwd=tmp_path, home=home, code=1)
    verify = run("store", "verify", "--json", cwd=tmp_path, home=home, code=1)
    listed = [c["id"] for c in json.loads(verify.stdout)["corrupt"]]
    problems: list[str] = []
    partial: list[tuple[Uploaded, Path]] = []
    for (kind, damage), case in cases.items():
        where = f"{kind} {damage} ({case.target})"
        if f"corrupt\t{case.target}\t" not in fsck.stdout:
            problems.append(f"{where}: not listed by fsck")
        if case.target not in listed:
            problems.append(f"{where}: not listed by store verify")
        dest = tmp_path / f"clone-{kind}-{damage}"
        failed = run("clone", case.name, "-d", str(dest), cwd=tmp_path, home=home, code=None)
        if failed.returncode != 1 or (case.target not in failed.stderr
                                      and case.partner not in failed.stderr):
            problems.append(f"{where}: clone exited {failed.returncode}: {failed.stderr}")
        no_wrong_bytes(dest, case.files)
        if kind == "blob" and (dest / ".ama" / "HEAD").exists():
            partial.append((case, dest))
    # A clone that got as far as the files: 'download -f' fetches good copies again.
    for case, dest in partial:
        done = run("download", "-f", cwd=dest, home=home, code=None)
        if done.returncode != 0 or files(dest) != case.files:
            problems.append(f"download -f in {dest.name} did not repair {case.target}: "
                            f"exit {done.returncode}: {done.stderr}")
    repaired = run("store", "verify", "--repair", cwd=tmp_path, home=home, code=None)
    if repaired.returncode != 0:
        problems.append(f"store verify --repair exited {repaired.returncode}: "
                        f"{repaired.stderr}")
    for oid, data in good.items():
        if place.read(oid) != data:
            problems.append(f"{oid} was not repaired")
    assert problems == []
    for (kind, damage), case in cases.items():
        dest = tmp_path / f"again-{kind}-{damage}"
        run("clone", case.name, "-d", str(dest), cwd=tmp_path, home=home)
        assert files(dest) == case.files
    store_clean(home)


# -- a remote's storage ----------------------------------------------------------------------


@dataclass
class Remote:
    url: str  # what 'ama remote add' takes
    token: str | None
    place: Place
    fsck: Callable[[], subprocess.CompletedProcess[str]]  # ama-server fsck on it
    get: Callable[[str], bytes | None] | None = None  # GET /objects/{id}: whole bytes or None


def served(server: RunningServer) -> Callable[[str], bytes | None]:
    """Ask ``server`` for an object's bytes as a transfer would; None unless it answers 200
    with a whole body."""
    import requests

    def get(oid: str) -> bytes | None:
        try:
            answer = requests.get(f"{server.url}/v1/projects/{server.project}/objects/{oid}",
                                  headers={"Authorization": f"Bearer {server.token}"},
                                  timeout=60)
        except requests.RequestException:  # cut short: not served
            return None
        return answer.content if answer.status_code == 200 else None

    return get


def check_remote(tmp_path: Path, alice: Path, remote: Remote) -> None:
    """Upload every case from ``alice``, damage it on the remote, and clone it as bob."""
    cases = {(kind, damage): upload_case(tmp_path, alice, kind, damage)
             for kind, damage in CASES}
    bad: dict[str, bytes] = {}
    for (_kind, damage), case in cases.items():
        remote.place.damage(case, damage)
        bad[case.target] = remote.place.read(case.target)
    bob = tmp_path / "bob"
    run("remote", "add", "team", remote.url, cwd=tmp_path, home=bob)
    run("remote", "default", "team", cwd=tmp_path, home=bob)
    if remote.token is not None:
        run("auth", "login", "--token", remote.token, cwd=tmp_path, home=bob)
        run("project", "activate", "demo", cwd=tmp_path, home=bob)
    report = remote.fsck()
    assert report.returncode == 1, report.stdout + report.stderr
    for (kind, damage), case in cases.items():
        dest = tmp_path / f"bob-{kind}-{damage}"
        failed = run("clone", case.name, "-d", str(dest), cwd=tmp_path, home=bob, code=None)
        assert failed.returncode != 0, f"{kind} {damage}: the clone succeeded"
        # The error names the damaged object, or the damaged pack that holds it.
        named = (case.target, case.partner, *remote.place.packs(case.target))
        assert any(oid in failed.stderr for oid in named), (kind, damage, failed.stderr)
        no_wrong_bytes(dest, case.files)
        assert case.target in report.stdout, (kind, damage, report.stdout)
        if remote.get is not None:
            sent_damaged = remote.get(case.target) == bad[case.target]
            assert not sent_damaged, (
                f"{kind} {damage}: the server sent the damaged bytes of {case.target}")
    # Nothing damaged entered bob's store.
    store_clean(bob)


def test_damaged_in_the_embedded_remote(tmp_path: Path) -> None:
    alice = tmp_path / "alice"
    run("class", "init", "data", cwd=tmp_path, home=alice)
    remote = alice / "remote"
    server_env = {**os.environ, "AMA_SERVER_HOME": str(tmp_path / "server-home"),
                  "AMA_DATABASE_URL": f"sqlite:///{remote / 'ama.db'}"}
    check_remote(tmp_path, alice, Remote(
        remote.as_uri(), None, folder_place(remote / "storage" / "objects"),
        lambda: run_ama_server(server_env, "fsck", check=False)))


@pytest.mark.parametrize("storage", ["file", "s3"])
def test_damaged_in_a_servers_storage(storage: str, tmp_path: Path,
                                      request: pytest.FixtureRequest,
                                      start_ama_server: Callable[..., RunningServer]) -> None:
    if storage == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        server = start_ama_server(storage_url=bucket.storage_url("ama"))
        place = s3_place(bucket, "ama")
    else:
        server = start_ama_server()
        place = folder_place(Path(urlsplit(server.storage_url).path) / "objects")
    alice = tmp_path / "alice"
    run("remote", "add", "team", server.url, cwd=tmp_path, home=alice)
    run("remote", "default", "team", cwd=tmp_path, home=alice)
    run("auth", "login", "--token", server.token, cwd=tmp_path, home=alice)
    run("project", "activate", server.project, cwd=tmp_path, home=alice)
    run("class", "init", "data", cwd=tmp_path, home=alice)
    check_remote(tmp_path, alice, Remote(server.url, server.token, place,
                                         lambda: server.run("fsck", check=False),
                                         served(server)))
