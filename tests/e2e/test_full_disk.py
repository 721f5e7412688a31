"""A disk that fills up under a command: the store's, a work tree's, an embedded remote's, a
server's database. Each command stops with one error line that names the disk and the fix
(exit 1, no traceback), leaves nothing half written, and the same command goes on once
space is freed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ama.plumbing.hashing import hash_bytes
from tests.e2e.conftest import installed
from tests.e2e.test_lifecycle import ama
from tests.services.disk import SmallDisk
from tests.services.server import ADMIN, PROJECT, ServerProcess, ama_server_command, serving

MIB = 1 << 20


def on(disk: SmallDisk, *args: str, cwd: Path, env: dict[str, str],
       code: int = 0) -> tuple[str, str]:
    """``ama ARGS`` run where ``disk`` is seen; its stdout and stderr."""
    done = disk.run(installed(), *args, cwd=cwd, env={**os.environ, **env})
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    if code:
        assert "Traceback" not in done.stderr, done.stderr
    return done.stdout, done.stderr


def leftovers(files: list[str]) -> list[str]:
    """Temp and lock files among ``files``: what a command that failed left half made."""
    return [f for f in files if "tmp" in f or "lock" in f or "partial" in f]


def uploaded(tmp_path: Path, env: dict[str, str], sizes: list[int]) -> tuple[Path, dict]:
    """An asset of files of random bytes of ``sizes``, uploaded to the default remote."""
    ama("class", "init", "data", cwd=tmp_path, env=env)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "data", cwd=m, env=env)
    contents = {f"f{i}.bin": os.urandom(size) for i, size in enumerate(sizes)}
    for name, data in contents.items():
        (m / name).write_bytes(data)
    ama("add", ".", cwd=m, env=env)
    ama("upload", "-m", "first", cwd=m, env=env)
    return m, contents


def test_a_full_store_refuses_add_and_clone_and_both_go_on_once_space_is_freed(
        tmp_path: Path, small_disk: Callable[[int], SmallDisk]) -> None:
    team = {"AMA_HOME": str(tmp_path / "team")}
    m, contents = uploaded(tmp_path, team, [3 * MIB, 3 * MIB, 1000, 2000])
    disk = small_disk(16 * MIB)
    home = disk.path / "home"
    mine = {"AMA_HOME": str(home)}
    on(disk, "remote", "add", "team", (tmp_path / "team" / "remote").as_uri(), cwd=tmp_path,
       env=mine)
    on(disk, "remote", "default", "team", cwd=tmp_path, env=mine)
    disk.fill(leave=2 * MIB)

    _, err = on(disk, "clone", "data/1", "-d", str(tmp_path / "c"), cwd=tmp_path, env=mine,
                code=1)
    assert f"ama: error: no space left on the disk holding the asset store {home}\n" in err
    assert "hint: free space on that disk and run the command again; `ama store gc`" in err
    assert leftovers(disk.files(home)) == []  # nothing half made

    # A file of the user's own, staged into the full store: refused, the index untouched.
    (m / "new.bin").write_bytes(os.urandom(3 * MIB))
    index = (m / ".ama" / "index").read_bytes()
    _, err = on(disk, "add", "new.bin", cwd=m, env={**mine, "AMA_HOME": str(home)}, code=1)
    assert "no space left on the disk holding the asset store" in err
    assert (m / ".ama" / "index").read_bytes() == index
    assert leftovers([p.name for p in (m / ".ama").iterdir()]) == []

    disk.free()
    on(disk, "clone", "data/1", "-d", str(tmp_path / "c"), cwd=tmp_path, env=mine)
    for name, data in contents.items():
        assert (tmp_path / "c" / name).read_bytes() == data  # the clone is off the disk
    status = json.loads(on(disk, "status", "--json", cwd=tmp_path / "c", env=mine)[0])
    assert status["uploaded"] is True and status["untracked"] == []


def test_a_full_work_tree_leaves_a_switch_undone_and_status_still_answers(
        tmp_path: Path, small_disk: Callable[[int], SmallDisk]) -> None:
    env = {"AMA_HOME": str(tmp_path / "home")}
    m, first = uploaded(tmp_path, env, [MIB, MIB, 500])
    second = {name: os.urandom(len(data)) for name, data in first.items()}
    for name, data in second.items():
        (m / name).write_bytes(data)
    ama("add", ".", cwd=m, env=env)
    ama("upload", "-m", "second", cwd=m, env=env)
    disk = small_disk(8 * MIB)
    c = disk.path / "c"
    on(disk, "clone", "data/1", "-d", str(c), cwd=tmp_path, env=env)  # copies: another disk
    disk.fill(leave=64 * 1024)

    _, err = on(disk, "switch", "0.0.0", cwd=c, env=env, code=1)
    assert f"ama: error: no space left on the disk holding {c}" in err
    # Status is a look: the stats it learns re-hashing a touched file would save it work
    # next time, which is not worth failing it for.
    assert disk.run("touch", str(c / "f0.bin")).returncode == 0
    disk.fill(leave=0)
    status = json.loads(on(disk, "status", "--json", cwd=c, env=env)[0])
    assert (status["version"], status["uploaded"]) == ("0.0.1", True)
    assert status["modified"] == [] and status["deleted"] == [] and status["untracked"] == []
    assert leftovers(disk.files(c)) == []

    disk.free()
    on(disk, "switch", "0.0.0", cwd=c, env=env)
    for name, data in first.items():
        assert disk.read(c / name) == data


def test_a_full_embedded_remote_says_its_storage_is_full_and_the_upload_goes_on(
        tmp_path: Path, small_disk: Callable[[int], SmallDisk]) -> None:
    disk = small_disk(16 * MIB)
    remote = disk.path / "remote"
    env = {"AMA_HOME": str(tmp_path / "home")}
    on(disk, "remote", "add", "full", remote.as_uri(), cwd=tmp_path, env=env)
    on(disk, "remote", "default", "full", cwd=tmp_path, env=env)
    on(disk, "class", "init", "data", cwd=tmp_path, env=env)
    m = tmp_path / "m"
    m.mkdir()
    on(disk, "init", "data", cwd=m, env=env)
    contents = {f"f{i}.bin": os.urandom(2 * MIB) for i in range(4)}
    contents.update({f"small/{i}.txt": f"{i}\n".encode() for i in range(200)})
    (m / "small").mkdir()
    for name, data in contents.items():
        (m / name).write_bytes(data)
    on(disk, "add", ".", cwd=m, env=env)
    disk.fill(leave=3 * MIB)

    _, err = on(disk, "upload", "-m", "first", cwd=m, env=env, code=1)
    assert f"ama: error: storage {(remote / 'storage').as_uri()} is full: " in err
    assert "what was stored is kept" in err
    assert leftovers(disk.files(remote)) == []

    disk.free()
    out, _ = on(disk, "upload", "-m", "first", cwd=m, env=env)
    assert "version 0.0.0" in out
    other = {"AMA_HOME": str(tmp_path / "other")}  # a store of its own: all comes over
    on(disk, "remote", "add", "full", remote.as_uri(), cwd=tmp_path, env=other)
    on(disk, "remote", "default", "full", cwd=tmp_path, env=other)
    on(disk, "clone", "data/1", "-d", str(tmp_path / "c"), cwd=tmp_path, env=other)
    for name, data in contents.items():
        assert (tmp_path / "c" / name).read_bytes() == data


def test_a_server_whose_database_fills_answers_507_and_records_nothing(
        tmp_path: Path, small_disk: Callable[[int], SmallDisk]) -> None:
    """The server's SQLite database on a full disk: the client is told so at once (507, not
    retried as a 500 would be) and no version is recorded; once space is freed the same
    upload makes the version."""
    disk = small_disk(16 * MIB)
    with server_on(disk, tmp_path, f"sqlite:///{disk.path / 'ama.db'}",
                   tmp_path / "storage") as (running, env):
        m, _ = uploaded(tmp_path, env, [1000, 2000])
        (m / "f0.bin").write_bytes(os.urandom(1000))
        ama("add", ".", cwd=m, env=env)
        disk.fill(leave=0)

        refused = ama("upload", "-m", "second", cwd=m, env=env, code=1)
        assert "ama: error: the remote's database is full: no space is left on its disk, " \
            "so nothing of this was recorded" in refused.stderr
        assert "hint: free space on the disk of the remote's database" in refused.stderr
        assert disk.path.as_posix() not in refused.stderr  # the server's paths stay its own

        disk.free()
        ama("upload", "-m", "second", cwd=m, env=env)
        versions = ama("versions", cwd=m, env=env).stdout
        assert [line.split("\t")[0].strip("* ") for line in versions.splitlines()] == \
            ["0.0.0", "0.0.1"]
        # Answered once, not failed with a 500 that the client would have asked again.
        assert running.log.read_text(errors="replace").count('" 507 ') == 1


def test_a_server_storage_that_fills_while_joining_parts_keeps_them_for_the_next_run(
        tmp_path: Path, small_disk: Callable[[int], SmallDisk]) -> None:
    """A file:// storage with room for an object's parts and not for their join: the
    upload fails naming the full storage, and once space is freed the same upload sends
    nothing again and completes."""
    disk = small_disk(24 * MIB)
    storage = disk.path / "storage"
    with server_on(disk, tmp_path, f"sqlite:///{tmp_path / 'ama.db'}", storage,
                   AMA_MULTIPART_PART_BYTES=str(MIB)) as (running, env):
        env["AMA_MULTIPART_THRESHOLD"] = str(MIB)
        ama("class", "init", "data", cwd=tmp_path, env=env)
        m = tmp_path / "m"
        m.mkdir()
        ama("init", "data", cwd=m, env=env)
        data = os.urandom(6 * MIB + 1000)
        (m / "weights.bin").write_bytes(data)
        ama("add", ".", cwd=m, env=env)
        disk.fill(leave=9 * MIB)  # the seven parts, and not their join beside them

        refused = ama("upload", "-m", "first", cwd=m, env=env, code=1)
        assert f"storage {storage.as_uri()} is full" in refused.stderr, refused.stderr
        assert "then run the upload again: it sends nothing again" in refused.stderr
        assert len([f for f in disk.files(storage) if "part-" in f]) == 7  # all kept

        disk.free()
        done = ama("upload", "-m", "first", cwd=m, env=env)
        assert "version 0.0.0" in done.stdout
        assert "resuming: 6 of 6 MiB of object" in done.stderr, done.stderr
        assert "(0 bytes)" in done.stderr  # nothing sent again
        assert disk.read(storage / "objects" / hash_bytes(data)[:2] /
                         hash_bytes(data)[2:]) == data
        assert leftovers(disk.files(storage)) == []


@contextmanager
def server_on(disk: SmallDisk, tmp_path: Path, database_url: str, storage: Path,
              **settings: str) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """ama-server, set up and serving where ``disk`` is seen, its database and project's
    storage where named, the environment holding ``settings``; yields it and the
    environment of a client signed in to it, its project active."""
    server_env = {**os.environ, "AMA_SERVER_HOME": str(tmp_path / "server"),
                  "AMA_DATABASE_URL": database_url, **settings}

    def server(*args: str) -> str:
        done = disk.run(*ama_server_command(), *args, env=server_env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    token = server("init", "--admin", ADMIN, "--email", "admin@example.org", "--storage",
                   storage.as_uri()).strip()
    server("project", "add", PROJECT, "--storage", storage.as_uri(), "--no-check")
    server("project", "grant", PROJECT, ADMIN, "admin")
    with serving(server_env, tmp_path / "server.log", wrapper=disk.wrapper) as running:
        env = {"AMA_HOME": str(tmp_path / "home"), "AMA_TOKEN": token}
        ama("remote", "add", "team", running.url, cwd=tmp_path, env=env)
        ama("remote", "default", "team", cwd=tmp_path, env=env)
        ama("project", "activate", PROJECT, cwd=tmp_path, env=env)
        yield running, env
