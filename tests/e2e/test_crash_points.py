"""Killing ``ama`` (and ``ama-server``'s commit) at every named crash point and at random
moments, running the command again, and comparing the result with an uninterrupted run
byte for byte: the files, the index, HEAD, the store, the remote's versions and objects,
and a clean ``ama fsck --full``.

The crash points are the ``AMA_CRASH_AT`` steps listed in ama-format(5); a test checks that
list against the ``crash_point("…")`` lines of the code, and that every point is killed
here by at least one command.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import AMA, files
from tests.services.server import RunningServer

REPO = Path(__file__).resolve().parents[2]
# A fixed manifest time: the same files, parents and message make the same manifest id in
# every world, so a killed-and-resumed upload can be compared with an uninterrupted one.
DATE = "2026-01-02T03:04:05Z"
KILLED = -signal.SIGKILL


# -- the documented points ---------------------------------------------------------------------


def documented_points() -> list[str]:
    """The steps listed under AMA_CRASH_AT in ama-format(5)."""
    text = (REPO / "man" / "ama-format.5").read_text(encoding="utf-8")
    section = text.split(".B AMA_CRASH_AT\n", 1)[1].split(".RE\n", 1)[0]
    return [name.replace("\\-", "-") for name in re.findall(r"^\.B (\S+)$", section, re.M)]


def points_in_code() -> list[str]:
    """The names of every ``crash_point("…")`` line of ama and ama-server."""
    found: list[str] = []
    for folder in ("ama", "remote"):
        for path in sorted((REPO / folder).rglob("*.py")):
            found += re.findall(r"""\bcrash_point\(["']([a-z][a-z.-]*)["']\)""",
                                path.read_text(encoding="utf-8"))
    return found


# -- a world: one or two users' asset stores and asset directories below one folder ------------


def ama_run(*args: str, cwd: Path, env: dict[str, str], code: int | None = 0,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([AMA, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})
    if code is not None:
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    return done


@dataclass
class World:
    """Alice, who uploads from ``m``; Bob, who clones alice's embedded remote into ``c``."""

    root: Path

    def env(self, user: str) -> dict[str, str]:
        return {"AMA_HOME": str(self.root / user), "AMA_AUTHOR_DATE": DATE}

    def ama(self, *args: str, user: str = "alice", cwd: str = "", code: int | None = 0,
            crash: str | None = None) -> subprocess.CompletedProcess[str]:
        env = self.env(user)
        if crash is not None:
            env["AMA_CRASH_AT"] = crash
        return ama_run(*args, cwd=self.root / cwd, env=env, code=code)


# Version 0.0.0 and the changes that make 0.0.1: folders, an executable, a deletion.
V0 = {"a.txt": b"alpha\n", "d/b.bin": bytes(range(256)) * 8, "d/e/c.bin": b"c" * 5000,
      "x/y.txt": b"why\n", "x/z.txt": b"zed\n", "run.sh": b"#!/bin/sh\necho hi\n"}
V1 = {"a.txt": b"alpha, changed\n", "d/e/c.bin": b"C" * 6000, "x/y.txt": None,
      "x/new.txt": b"new\n"}


def write(root: Path, content: dict[str, bytes | None]) -> None:
    for name, data in content.items():
        path = root / name
        if data is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)  # a hard-linked file is read-only
        path.write_bytes(data)
        if name.endswith(".sh"):
            path.chmod(0o755)


def new_files(w: World) -> None:
    w.ama("class", "init", "data")
    (w.root / "m").mkdir()
    w.ama("init", "data", cwd="m")
    write(w.root / "m", V0)


def staged_v0(w: World) -> None:
    new_files(w)
    w.ama("add", ".", cwd="m")


def uploaded_v0(w: World) -> None:
    staged_v0(w)
    w.ama("upload", "-m", "first", cwd="m")


def staged_v1(w: World) -> None:
    uploaded_v0(w)
    write(w.root / "m", V1)
    w.ama("add", ".", cwd="m")


def changed_v1(w: World) -> None:
    uploaded_v0(w)
    write(w.root / "m", {k: v for k, v in V1.items() if k in V0})


def uploaded_v1(w: World) -> None:
    staged_v1(w)
    w.ama("upload", "-m", "second", cwd="m")
    w.ama("remote", "add", "team", (w.root / "alice" / "remote").as_uri(), user="bob")
    w.ama("remote", "default", "team", user="bob")


def soft_clone(w: World) -> None:
    uploaded_v1(w)
    w.ama("clone", "data/1", "-d", "c", "--soft", user="bob")


def cloned(w: World) -> None:
    uploaded_v1(w)
    w.ama("clone", "data/1", "-d", "c", user="bob")


def garbage(w: World) -> None:
    """Staged files replaced before any upload: their first objects are garbage."""
    staged_v0(w)
    write(w.root / "m", {"a.txt": b"alpha again\n", "x/z.txt": b"zed again\n"})
    w.ama("add", ".", cwd="m")


@dataclass(frozen=True)
class Scenario:
    setup: Callable[[World], None]
    command: tuple[str, ...]
    cwd: str
    user: str
    points: tuple[str, ...]


UPLOAD_POINTS = ("upload.sent", "upload.committed", "server.commit.recorded",
                 "server.commit.committed")
PLACE_POINTS = ("download.received", "checkout.placed", "checkout.before-index")
SCENARIOS = {
    "add": Scenario(new_files, ("add", "."), "m", "alice", ("store.stored", "add.before-index")),
    "update": Scenario(changed_v1, ("update", "--all"), "m", "alice",
                       ("store.stored", "update.before-index")),
    "upload-new": Scenario(staged_v0, ("upload", "-m", "first"), "m", "alice", UPLOAD_POINTS),
    "upload-next": Scenario(staged_v1, ("upload", "-m", "second"), "m", "alice",
                            UPLOAD_POINTS),
    "clone": Scenario(uploaded_v1, ("clone", "data/1", "-d", "c"), "", "bob", PLACE_POINTS),
    "download": Scenario(soft_clone, ("download",), "c", "bob", PLACE_POINTS),
    "switch": Scenario(cloned, ("switch", "--version", "0.0.0"), "c", "bob",
                       ("checkout.placed", "checkout.before-index", "switch.before-head")),
    "gc": Scenario(garbage, ("store", "gc", "--grace", "0"), "", "alice", ("gc.deleted",)),
}
# How a user completes each command after a kill: the same command again, and for a clone
# also 'ama download' in the directory it made (ama-clone(1)).
RECOVERIES: dict[str, list[tuple[tuple[str, ...], str]]] = {
    "clone": [(("clone", "data/1", "-d", "c"), ""), (("download",), "c")]}

CASES = [pytest.param(name, point, n, id=f"{name}-{point}-{n}")
         for name, scenario in SCENARIOS.items() for point in scenario.points
         for n in range(len(RECOVERIES.get(name, [None])))]  # type: ignore[list-item]


def object_ids(folder: Path) -> list[str]:
    """The ids of the objects stored below ``folder`` (``ab/cdef…``), temp files left out."""
    if not folder.is_dir():
        return []
    return sorted(sub.name + name for sub in folder.iterdir() if sub.is_dir()
                  for name in os.listdir(sub) if re.fullmatch(r"[0-9a-f]{62}", name))


TEMP_NAME = re.compile(r"temp_[0-9a-f]+")


def state(w: World, user: str = "alice") -> dict[str, object]:
    """Everything a user could compare between two worlds, with nothing that legitimately
    differs (absolute paths, stat times, the remote's clock, a temp asset's random name):
    the objects on alice's embedded remote, and ``user``'s store and asset directory
    (the other user's cannot change); and check that the store is clean."""
    seen: dict[str, object] = {
        "remote": object_ids(w.root / "alice" / "remote" / "storage" / "objects"),
        "remote versions": remote_versions(w.root / "alice" / "remote" / "ama.db")}
    home = w.root / user
    seen[f"{user} store"] = object_ids(home / "objects")
    seen[f"{user} uploads"] = sorted(os.listdir(home / "uploads")) if (
        home / "uploads").is_dir() else []
    # Alice's store holds every version whole. Bob's holds the manifests of the versions
    # he did not check out without their trees (a clone fetches no more), which
    # --full reports as missing: that is what an uninterrupted run leaves too. Temp
    # files a killed run left are garbage that gc removes, not damage.
    full = w.ama("fsck", "--full", user=user, code=None)
    found = [line for line in full.stdout.splitlines() if not line.startswith("garbage\t")]
    seen[f"{user} fsck --full"] = found
    wrong = [line for line in found if user == "alice" or not line.startswith("missing\t")]
    assert wrong == [], f"{user}'s store: {full.stdout}"
    if not found:
        assert full.returncode == 0, f"{user}'s store: {full.stdout}{full.stderr}"
    verify = w.ama("store", "verify", "--json", user=user, code=None)
    assert (verify.returncode, json.loads(verify.stdout)["corrupt"]) == (0, []), verify.stdout
    for folder in {"alice": ("m",), "bob": ("c",)}[user]:
        root = w.root / folder
        if not (root / ".ama").is_dir():
            continue
        seen[f"{folder} files"] = files(root)
        seen[f"{folder} modes"] = {p.relative_to(root).as_posix(): p.stat().st_mode & 0o111
                                   for p in root.rglob("*") if p.is_file()
                                   and ".ama" not in p.relative_to(root).parts}
        seen[f"{folder} .ama"] = sorted(os.listdir(root / ".ama"))
        seen[f"{folder} HEAD"] = TEMP_NAME.sub("temp_", (root / ".ama" / "HEAD").read_text())
        seen[f"{folder} index"] = w.ama("ls-files", "-s", user=user, cwd=folder).stdout
        status = json.loads(w.ama("status", "--json", user=user, cwd=folder).stdout)
        status["asset"] = TEMP_NAME.sub("temp_", status["asset"])
        seen[f"{folder} status"] = status
    return seen


def remote_versions(database: Path) -> list[tuple[object, ...]]:
    """The embedded remote's versions, as rows of its database: (class, ordinal, version,
    manifest), and each class's next ordinal; read directly, which costs a few
    milliseconds where 'ama versions' costs the remote's start."""
    import sqlite3

    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT c.name, a.ordinal, v.major || '.' || v.minor || '.' || v.patch, "
            "v.manifest_id FROM versions v JOIN assets a ON v.asset_id = a.id "
            "JOIN classes c ON a.class_id = c.id ORDER BY 1, 2, v.major, v.minor, v.patch"
        ).fetchall()
        rows += db.execute("SELECT name, next_ordinal FROM classes ORDER BY 1").fetchall()
    return rows


class Worlds:
    """Each scenario's setup is made once, at a fixed path, and kept as a template: a test
    copies it back to that same path (so the absolute paths the stores record hold) and
    runs the command there. The uninterrupted run's state is kept too."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.expected: dict[str, dict[str, object]] = {}

    def fresh(self, name: str) -> World:
        """The world of scenario ``name`` as its setup left it."""
        template = self.base / f"{name}.template"
        w = World(self.base / name)
        if not template.exists():
            w.root.mkdir()
            SCENARIOS[name].setup(w)
            shutil.copytree(w.root, template, symlinks=True)
        else:
            shutil.rmtree(w.root, ignore_errors=True)
            shutil.copytree(template, w.root, symlinks=True)
        return w

    def reference(self, name: str) -> dict[str, object]:
        """The state after an uninterrupted run of scenario ``name``."""
        if name not in self.expected:
            scenario = SCENARIOS[name]
            w = self.fresh(name)
            w.ama(*scenario.command, user=scenario.user, cwd=scenario.cwd)
            self.expected[name] = state(w, scenario.user)
        return self.expected[name]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Worlds:
    return Worlds(tmp_path_factory.mktemp("worlds"))


def test_every_documented_crash_point_is_in_the_code_and_killed_here() -> None:
    documented = documented_points()
    in_code = points_in_code()
    assert len(set(in_code)) == len(in_code), "a crash point appears twice in the code"
    assert sorted(documented) == sorted(in_code)
    exercised = {p for s in SCENARIOS.values() for p in s.points}
    assert exercised == set(documented)


@pytest.mark.parametrize(("name", "point", "recovery"), CASES)
def test_killed_at_a_crash_point_then_run_again(name: str, point: str, recovery: int,
                                                worlds: Worlds) -> None:
    expected = worlds.reference(name)
    scenario = SCENARIOS[name]
    w = worlds.fresh(name)
    killed = w.ama(*scenario.command, user=scenario.user, cwd=scenario.cwd, code=None,
                   crash=point)
    assert killed.returncode == KILLED, (
        f"ama {' '.join(scenario.command)} did not reach {point}: exit {killed.returncode}, "
        f"{killed.stderr}")
    command, cwd = RECOVERIES.get(name, [(scenario.command, scenario.cwd)])[recovery]
    w.ama(*command, user=scenario.user, cwd=cwd)
    assert state(w, scenario.user) == expected


# -- the remote's commit under gunicorn --------------------------------------------------------


@pytest.mark.parametrize("point", ["server.commit.recorded", "server.commit.committed"])
def test_server_worker_killed_in_commit(point: str, tmp_path: Path, worlds: Worlds,
                                        monkeypatch: pytest.MonkeyPatch,
                                        start_ama_server: Callable[..., RunningServer]
                                        ) -> None:
    """A gunicorn worker killed in the commit of an upload: gunicorn starts another worker,
    the client's retry of the commit (same idempotency key) reaches it, and the upload makes
    exactly the one version an uninterrupted upload makes."""
    once = tmp_path / "crashed"
    monkeypatch.setenv("AMA_CRASH_AT", point)
    monkeypatch.setenv("AMA_CRASH_ONCE", str(once))
    server = start_ama_server()
    monkeypatch.delenv("AMA_CRASH_AT")
    monkeypatch.delenv("AMA_CRASH_ONCE")
    expected = worlds.reference("upload-next")
    w = World(tmp_path / "w")
    w.root.mkdir()
    w.ama("remote", "add", "team", server.url)
    w.ama("remote", "default", "team")
    w.ama("auth", "login", "--token", server.token, "--remote", "team")
    w.ama("project", "activate", server.project)
    staged_v0(w)
    retried = w.ama("upload", "-m", "first", cwd="m", code=None)
    assert once.exists(), f"no worker reached {point}: {retried.stdout}{retried.stderr}"
    assert retried.returncode == 0, retried.stderr
    assert not (w.root / "m" / ".ama" / "upload").exists()
    # Run again, an upload finds nothing new to send or commit.
    again = w.ama("upload", "-m", "first", cwd="m")
    assert again.stdout.startswith("Nothing to upload: the staged files are data/1 0.0.0")
    write(w.root / "m", V1)
    w.ama("add", ".", cwd="m")
    w.ama("upload", "-m", "second", cwd="m")
    assert server.process.poll() is None
    got = state(w)
    # HEAD names the remote and project, which differ from the reference's embedded one.
    for key in ("m files", "m modes", "m index", "m status", "m .ama", "alice store",
                "alice uploads"):
        assert got[key] == expected[key], key
    listed = json.loads(w.ama("versions", "--json", cwd="m").stdout)
    assert [("data", 1, v["version"], v["manifest"]) for v in listed] == [
        row for row in expected["remote versions"] if len(row) == 4]  # type: ignore[attr-defined]
    assert [v["name"] for v in listed] == ["data/1", "data/1"]
    fsck = server.run("fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


# -- SIGKILL at random moments -----------------------------------------------------------------


MANY = 200


def many_files(root: Path, tag: str) -> None:
    for n in range(MANY):
        path = root / f"f{n % 10}" / f"{n:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_bytes(f"{tag} {n}\n".encode() * (1 + n % 50))


def run_killed(args: tuple[str, ...], cwd: Path, env: dict[str, str], delay: float) -> int:
    """Run ``ama ARGS``, SIGKILL it after ``delay`` seconds if it still runs; return its exit
    code (-9 when killed)."""
    proc = subprocess.Popen([AMA, *args], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


def timed(args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    ama_run(*args, cwd=cwd, env=env)
    return time.monotonic() - start


ITERATIONS = 2


def test_killed_at_random_moments(tmp_path: Path) -> None:
    """add, upload, clone and switch of two hundred files, each killed after a seeded
    random delay (somewhere within its uninterrupted run time) and run again: the result
    is the uninterrupted one's every time."""
    rng = random.Random(20261204)
    # The uninterrupted runs, timed to choose the delays.
    ref = World(tmp_path / "ref")
    ref.root.mkdir()
    ref.ama("class", "init", "data")
    (ref.root / "m").mkdir()
    ref.ama("init", "data", cwd="m")
    many_files(ref.root / "m", "v0")
    took = {"add": timed(("add", "."), ref.root / "m", ref.env("alice"))}
    add_state = ref.ama("ls-files", "-s", cwd="m").stdout
    took["upload"] = timed(("upload", "-m", "first"), ref.root / "m", ref.env("alice"))
    many_files(ref.root / "m", "v1")
    ref.ama("add", ".", cwd="m")
    ref.ama("upload", "-m", "second", cwd="m")
    ref_versions = remote_versions(ref.root / "alice" / "remote" / "ama.db")
    ref.ama("remote", "add", "team", (ref.root / "alice" / "remote").as_uri(), user="bob")
    ref.ama("remote", "default", "team", user="bob")
    took["clone"] = timed(("clone", "data/1", "-d", "c"), ref.root, ref.env("bob"))
    v1 = files(ref.root / "c")
    v1_index = ref.ama("ls-files", "-s", user="bob", cwd="c").stdout
    took["switch"] = timed(("switch", "--version", "0.0.0"), ref.root / "c", ref.env("bob"))
    v0 = files(ref.root / "c")
    v0_index = ref.ama("ls-files", "-s", user="bob", cwd="c").stdout
    ref.ama("switch", "--version", "0.0.1", user="bob", cwd="c")
    kills = 0

    def delay(op: str) -> float:
        # The first part of a run is the interpreter starting, where a kill proves little.
        return rng.uniform(0.3 * took[op], took[op])

    def clean(w: World, user: str) -> None:
        """Nothing in the store but whole objects, and temp files that gc removes."""
        fsck = w.ama("fsck", "--full", user=user, code=None)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert all(line.startswith("garbage\t") for line in fsck.stdout.splitlines())
        w.ama("store", "verify", user=user)

    for i in range(ITERATIONS):
        w = World(tmp_path / f"w{i}")
        w.root.mkdir()
        alice = w.env("alice")
        m = w.root / "m"
        w.ama("class", "init", "data")
        m.mkdir()
        w.ama("init", "data", cwd="m")
        many_files(m, "v0")
        # add
        kills += run_killed(("add", "."), m, alice, delay("add")) == KILLED
        w.ama("add", ".", cwd="m")
        assert w.ama("ls-files", "-s", cwd="m").stdout == add_state
        # upload, twice: a new asset and its next version
        kills += run_killed(("upload", "-m", "first"), m, alice, delay("upload")) == KILLED
        w.ama("upload", "-m", "first", cwd="m")
        many_files(m, "v1")
        w.ama("add", ".", cwd="m")
        kills += run_killed(("upload", "-m", "second"), m, alice, delay("upload")) == KILLED
        w.ama("upload", "-m", "second", cwd="m")
        assert remote_versions(w.root / "alice" / "remote" / "ama.db") == ref_versions
        clean(w, "alice")
        # clone, completed by download
        bob = w.env("bob")
        w.ama("remote", "add", "team", (w.root / "alice" / "remote").as_uri(), user="bob")
        w.ama("remote", "default", "team", user="bob")
        if run_killed(("clone", "data/1", "-d", "c"), w.root, bob, delay("clone")) == KILLED:
            kills += 1
            if (w.root / "c" / ".ama" / "HEAD").exists():
                w.ama("download", user="bob", cwd="c")
            else:  # killed before the directory became an asset directory: clone again
                w.ama("clone", "data/1", "-d", "c", user="bob")
        c = w.root / "c"
        assert files(c) == v1
        assert w.ama("ls-files", "-s", user="bob", cwd="c").stdout == v1_index
        # switch, back and forth
        for version, want, index in (("0.0.0", v0, v0_index), ("0.0.1", v1, v1_index)):
            kills += run_killed(("switch", "--version", version), c, bob,
                                delay("switch")) == KILLED
            w.ama("switch", "--version", version, user="bob", cwd="c")
            assert files(c) == want
            assert w.ama("ls-files", "-s", user="bob", cwd="c").stdout == index
            status = json.loads(w.ama("status", "--json", user="bob", cwd="c").stdout)
            assert (status["version"], status["clean"]) == (version, True)
        clean(w, "bob")
    # The delays are drawn within each command's uninterrupted run time, so most runs are
    # cut short (how many depends on the machine's load; none at all would prove nothing).
    assert kills > 0

