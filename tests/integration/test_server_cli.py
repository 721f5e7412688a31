"""``ama-server`` through the installed console script: init, users, projects, tokens, fsck,
configuration precedence, errors and exit codes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ama_remote.cli import commands
from ama_remote.config import load_config, open_service
from tests.services.server import ama_server_command, run_ama_server


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "AMA_SERVER_HOME": str(tmp_path / "srv"), **extra}


def ama_server(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ama_server(env, *args, check=False)


def init(env: dict[str, str], tmp_path: Path) -> str:
    done = ama_server(env, "init", "--admin", "alice", "--email", "alice@example.org",
                      "--storage", f"file://{tmp_path / 'storage'}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_init_creates_the_database_and_prints_the_admins_token_once(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    token = init(env, tmp_path)
    assert len(token.splitlines()) == 1 and len(token) >= 20
    assert (tmp_path / "srv" / "ama.db").exists()
    assert (tmp_path / "srv" / "server.toml").stat().st_mode & 0o077 == 0
    service = open_service(load_config(environ={"AMA_SERVER_HOME": str(tmp_path / "srv")}))
    caller = service.authenticate(token)
    assert caller.username == "alice" and caller.is_admin
    again = ama_server(env, "init", "--admin", "alice", "--email", "alice@example.org")
    assert again.returncode == 1
    assert "already has users" in again.stderr and "ama-server token issue" in again.stderr
    assert again.stdout == ""


def test_init_makes_the_servers_folder_private_whatever_the_umask(tmp_path: Path) -> None:
    home = tmp_path / "srv"
    done = subprocess.run(
        [*ama_server_command(), "init", "--email", "a@example.org"],
        env=env_for(tmp_path), capture_output=True, text=True, timeout=120, umask=0)
    assert done.returncode == 0, done.stderr
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "server.toml").stat().st_mode & 0o777 == 0o600


def test_init_refuses_a_storage_it_cannot_use(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = ama_server(env_for(tmp_path), "init", "--email", "a@example.org",
                      "--storage", f"file://{blocker}/objects")
    assert done.returncode != 0
    assert done.stderr.startswith("ama-server: error: ") and done.stdout == ""
    bad = ama_server(env_for(tmp_path), "init", "--email", "a@example.org",
                     "--storage", "ftp://example.org/x")
    assert bad.returncode == 2 and "ftp://example.org/x" in bad.stderr


def test_users_are_added_listed_disabled_and_activated(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    init(env, tmp_path)
    assert ama_server(env, "user", "add", "bob", "--email", "bob@example.org").returncode == 0
    assert ama_server(env, "user", "add", "carol", "--email", "c@example.org", "--admin",
                      "--inactive").returncode == 0
    listed = ama_server(env, "user", "list").stdout.splitlines()
    assert "bob\tbob@example.org\tactive\tuser" in listed
    assert "carol\tc@example.org\tdisabled\tadmin" in listed
    assert "alice\talice@example.org\tactive\tadmin" in listed

    token = ama_server(env, "token", "issue", "bob").stdout.strip()
    service = open_service(load_config(environ=env))
    assert service.authenticate(token).username == "bob"
    assert ama_server(env, "user", "disable", "bob").returncode == 0
    assert "bob\tbob@example.org\tdisabled\tuser" in ama_server(env, "user", "list").stdout
    from ama_remote.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        service.authenticate(token)
    assert ama_server(env, "user", "activate", "bob").returncode == 0
    assert service.authenticate(token).username == "bob"

    duplicate = ama_server(env, "user", "add", "bob", "--email", "bob@example.org")
    assert duplicate.returncode != 0 and "bob" in duplicate.stderr
    unknown = ama_server(env, "token", "issue", "nobody")
    assert unknown.returncode == 3 and "nobody" in unknown.stderr


def test_projects_are_added_and_granted(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    init(env, tmp_path)
    ama_server(env, "user", "add", "bob", "--email", "bob@example.org")
    added = ama_server(env, "project", "add", "vision", "--storage",
                       f"file://{tmp_path / 'vision'}")
    assert added.returncode == 0, added.stderr
    assert ama_server(env, "project", "grant", "vision", "bob", "writer").returncode == 0
    service = open_service(load_config(environ=env))
    token = ama_server(env, "token", "issue", "bob").stdout.strip()
    me = service.me(service.authenticate(token))
    assert {"name": "vision", "role": "writer"} in me["projects"]

    bad_role = ama_server(env, "project", "grant", "vision", "bob", "owner")
    assert bad_role.returncode == 2 and "owner" in bad_role.stderr
    no_project = ama_server(env, "project", "grant", "nope", "bob", "reader")
    assert no_project.returncode == 3 and "nope" in no_project.stderr

    listed = ama_server(env, "project", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"vision\tfile://{tmp_path / 'vision'}\t1" in listed.stdout.splitlines()
    # Every hint that names a project list names this command.
    unknown = ama_server(env, "fsck", "--project", "nope")
    assert unknown.returncode == 3 and "'ama-server project list'" in unknown.stderr


def test_project_add_refuses_a_storage_another_project_uses(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    init(env, tmp_path)
    vision = tmp_path / "vision"
    assert ama_server(env, "project", "add", "vision", "--storage",
                      f"file://{vision}").returncode == 0
    for url in (f"file://{vision}/", f"file://{vision}/audio", f"file://{tmp_path}"):
        refused = ama_server(env, "project", "add", "audio", "--storage", url)
        assert refused.returncode == 1, refused.stderr
        assert "project 'vision'" in refused.stderr and "hint:" in refused.stderr
    assert ama_server(env, "project", "list").stdout.splitlines() == [
        f"vision\tfile://{vision}\t0"]
    assert ama_server(env, "project", "add", "audio", "--storage",
                      f"file://{tmp_path / 'audio'}").returncode == 0


def test_fsck_reports_a_damaged_object_and_exits_1(tmp_path: Path) -> None:
    from ama.plumbing.hashing import hash_bytes
    from ama.plumbing.objects import Author, Manifest, Tree, TreeEntry
    from ama_remote.storage import object_key

    env = env_for(tmp_path)
    init(env, tmp_path)
    storage = tmp_path / "vision"
    ama_server(env, "project", "add", "vision", "--storage", f"file://{storage}")
    assert ama_server(env, "fsck").returncode == 0

    service = open_service(load_config(environ=env))
    admin = service.authenticate(ama_server(env, "token", "issue", "alice").stdout.strip())
    service.put_class(admin, "vision", "models")
    blob = b"payload\n"
    tree = Tree.of([TreeEntry("blob", hash_bytes(blob), len(blob), "f")]).serialize()
    manifest = Manifest(tree=hash_bytes(tree), author=Author("a", "a@example.org"),
                        created="2026-11-27T16:00:00Z").serialize()
    import io

    for data in (blob, tree, manifest):
        service.put_object(admin, "vision", hash_bytes(data), io.BytesIO(data), len(data))
    service.commit(admin, "vision", "models", None, None, hash_bytes(manifest), "k")
    assert ama_server(env, "fsck").returncode == 0

    path = storage / object_key(hash_bytes(blob))
    path.chmod(0o644)
    path.write_bytes(b"tampered\n")
    done = ama_server(env, "fsck", "--project", "vision")
    assert done.returncode == 1
    assert hash_bytes(blob) in done.stdout and "\t" in done.stdout
    assert "1 problem" in done.stderr
    assert ama_server(env, "fsck", "--project", "nope").returncode == 3


def test_flags_win_over_the_environment_which_wins_over_server_toml(tmp_path: Path) -> None:
    home = tmp_path / "srv"
    home.mkdir()
    (home / "server.toml").write_text(f'database_url = "sqlite:///{tmp_path / "file.db"}"\n')
    env = env_for(tmp_path)
    assert load_config(environ=env).database_url == f"sqlite:///{tmp_path / 'file.db'}"
    env["AMA_DATABASE_URL"] = f"sqlite:///{tmp_path / 'env.db'}"
    assert load_config(environ=env).database_url == f"sqlite:///{tmp_path / 'env.db'}"
    flag = f"sqlite:///{tmp_path / 'flag.db'}"
    assert ama_server(env, "--database-url", flag, "migrate").returncode == 0
    assert (tmp_path / "flag.db").exists()
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "file.db").exists()


def test_a_broken_config_file_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "srv"
    home.mkdir()
    (home / "server.toml").write_text("max_object_bytes = 'lots'\n")
    done = ama_server(env_for(tmp_path), "migrate")
    assert done.returncode == 2 and "max_object_bytes" in done.stderr
    (home / "server.toml").write_text("databse_url = 'x'\n")
    done = ama_server(env_for(tmp_path), "migrate")
    assert done.returncode == 2 and "databse_url" in done.stderr
    (home / "server.toml").write_text("not toml [\n")
    done = ama_server(env_for(tmp_path), "migrate")
    assert done.returncode == 2 and "server.toml" in done.stderr


@pytest.mark.parametrize(("variable", "value"), [
    ("AMA_VERIFY_LEASE_SECONDS", "15m"), ("AMA_VERIFY_LEASE_SECONDS", "-1"),
    ("AMA_VERIFY_LEASE_SECONDS", "nan"), ("AMA_VERIFY_LEASE_SECONDS", "inf"),
    ("AMA_MULTIPART_PART_BYTES", "64M")])
def test_serve_refuses_to_start_with_a_bad_setting_in_the_environment(
        tmp_path: Path, variable: str, value: str) -> None:
    env = env_for(tmp_path)
    init(env, tmp_path)
    # A port nobody listens on: were the setting taken, the server would start there.
    done = subprocess.run([*_command(), "serve", "--bind", "127.0.0.1:1"],
                          env={**env, variable: value}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{variable}={value!r}" in done.stderr and "unset it" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_on_a_taken_port_fails_with_a_message(tmp_path: Path) -> None:
    import socket

    env = env_for(tmp_path)
    init(env, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = subprocess.run([*_command(), "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Address already in use" in done.stderr or "address" in done.stderr.lower()


def _command() -> list[str]:
    from tests.services.server import ama_server_command

    return ama_server_command()


@pytest.mark.parametrize(("name", "command"), commands(), ids=[n for n, _ in commands()])
def test_every_command_answers_help_with_exit_status_and_examples(name: str, command: object
                                                                  ) -> None:
    args = name.split()[1:]
    done = ama_server(dict(os.environ), *args, "--help")
    assert done.returncode == 0, done.stderr
    assert "Exit status:" in done.stdout and "Examples:" in done.stdout


@pytest.mark.parametrize("args", [("user", "list"), ("project", "list"), ("fsck",)])
def test_commands_on_a_home_never_set_up_say_how_to_set_it_up(tmp_path: Path,
                                                              args: tuple[str, ...]) -> None:
    env = env_for(tmp_path)
    done = ama_server(env, *args)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("ama-server: error: no ama-server is set up at ")
    assert "hint: set one up with 'ama-server init --email EMAIL'" in done.stderr
    assert not (tmp_path / "srv" / "ama.db").exists()
