"""Every command line the documentation shows is run here, as a user would paste it.

The examples come from where they are written: the ``examples`` of every ``ama`` and
``ama-server`` command and subcommand (the man pages' EXAMPLES are generated from exactly
these), the ``sh`` blocks of the README, and ``demo/demo.sh`` (run whole). A new example is
picked up without touching this file; :func:`test_every_example_is_run` fails if one is
neither run nor listed in :data:`SPECIAL`.

Each example runs with ``bash -c`` (its quoting, pipes and ``$(...)`` are real) with the
installed ``ama`` and ``ama-server`` first on PATH, in a copy of a prepared world: a home
outside the working folders, classes ``ml-models`` and ``imagenet-subsets`` with assets,
versions, aliases and inputs, an asset directory to stand in, a git repository that uses
assets, and, for the examples of a team server, a real ``ama-server`` under gunicorn with its
objects in S3 (moto). The shell variables the examples use (``$ID``, ``$TREE``...) are set to
real ids of that world. Only what cannot be real here is rewritten, each in
:data:`SUBSTITUTIONS` with its reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from tests.services.inprocess import in_process
from tests.services.server import free_port, start_server

REPO = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).parent)


@dataclass(frozen=True)
class Example:
    where: str  # "ama alias add", "README.md", ...
    text: str
    command: str

    @property
    def id(self) -> str:
        return f"{self.where}: {self.command}"


def _walk(command: click.Command, where: str) -> Iterator[Example]:
    for text, line in getattr(command, "examples", None) or []:
        yield Example(where, text, line)
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=where)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, f"{where} {name}")


def command_examples() -> list[Example]:
    """The examples of every command of ``ama`` and of the other programs (``ama-server``),
    as the man pages show them."""
    from ama.cli.main import cli
    from ama.cli.manpages import ROOT_EXAMPLES, _other_programs

    found = list(_walk(cli, "ama"))
    if not getattr(cli, "examples", None):
        found += [Example("ama", text, line) for text, line in ROOT_EXAMPLES]
    for program, group in _other_programs():
        found += _walk(group, program)
    return found


def readme_blocks() -> list[Example]:
    """Each ``sh`` block of the README, whole: its lines build on each other (``cd``)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [Example("README.md", f"block {n}", block)
            for n, block in enumerate(re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M), 1)]


# -- what cannot be real here ----------------------------------------------------------------

# (pattern, replacement, why). A replacement may name a field of World ({url}, {s3}, ...).
SUBSTITUTIONS: list[tuple[str, str, str]] = [
    ("https://ama.example.org", "{url}", "the team server is the test's ama-server on 127.0.0.1"),
    ("0.0.0.0:8080", "127.0.0.1:{port}", "a free loopback port, never all interfaces"),
    ("127.0.0.1:8080", "127.0.0.1:{port}", "8080 may be taken on this machine"),
    ("s3://ama-data/vision", "{s3}/vision", "the bucket is moto's"),
    ("s3://bucket/prefix", "{s3}/prefix", "the bucket is moto's"),
    ("file:///srv/ama/", "file://{root}/srv/", "no write access to /srv"),
    ("file:///mnt/ama", "file://{root}/mnt/ama", "no write access to /mnt"),
    ("/mnt/big/ama-objects", "{root}/mnt/big/ama-objects", "no write access to /mnt"),
    ("/data/ama-store", "{root}/data/ama-store", "no write access to /data"),
    ("postgresql+psycopg://ama@db/ama", "sqlite:///{root}/standin.db", "there is no "
     "PostgreSQL host 'db' here; a SQLite file stands in (the PostgreSQL tests cover it)"),
    ("ama_…", "{token}", "a token is printed by the server at run time"),
    ("--token TOKEN", "--token {token}", "a token is printed by the server at run time"),
    ("3f9a…", "{asset_hash}", "an asset hash is computed at run time"),
    (" 4f2a", " {prefix}", "an id prefix depends on the bytes stored at run time"),
]

# Command lines not run by bash -c as they are, and what is done instead.
SPECIAL: dict[str, str] = {
    "make demo": "builds .venv and runs demo/demo.sh, which test_demo_runs_end_to_end runs",
    "make test": "runs the whole test suite, of which this test is a part",
    "ama add s3://my-bucket/exports/train.csv --dest raw": (
        "reads a bucket this world has none of: tests/e2e/test_add_sources.py adds from "
        "moto's S3 the same way"),
    "ama add gs://my-bucket/images/ https://example.org/labels.json": (
        "reads a bucket and a web server this world has none of: "
        "tests/e2e/test_add_sources.py adds from fake-gcs-server and a local web server "
        "the same way"),
    "ama add --proxy s3://my-bucket/weights/model.bin --dest weights": (
        "reads a bucket this world has none of: tests/e2e/test_proxies.py adds proxies "
        "from moto's S3, fake-gcs-server and a local web server the same way"),
    "ama store verify --proxies": (
        "asks buckets this world has none of: tests/e2e/test_proxies.py runs it on proxies "
        "of moto's S3, fake-gcs-server and a local web server, unchanged and changed"),
    "ama dashboard": (
        "serves until Ctrl-C and opens a browser: tests/integration/test_dashboard.py "
        "starts ama dashboard --no-browser, signs in through its one-time link, reads a "
        "page and stops it with SIGINT"),
    "ama dashboard --port 8765 --no-browser": (
        "serves until Ctrl-C, and a fixed port could be taken here: "
        "tests/integration/test_dashboard.py starts ama dashboard --no-browser on a free "
        "port, reads a page and stops it with SIGINT"),
    "ama class init ml-models --edit": (
        "serves the class editor until Ctrl-C and opens a browser: "
        "tests/integration/test_dashboard_classes.py runs ama class init NAME --edit with a "
        "BROWSER that records the link, reads the editor through it and stops it with "
        "SIGINT"),
}


# Command lines run as another command line, and why.
RUN_INSTEAD: dict[str, tuple[str, str]] = {
    "ama auth login --remote https://ama.example.org": (
        "ama auth login --token {token} --remote https://ama.example.org",
        "opens a browser for OpenID Connect, which there is none of here: the token login "
        "of the same remote is run"),
    "ama auth login": (
        "ama auth login --token {token}",
        "opens a browser for OpenID Connect, which there is none of here: the token login "
        "of the same remote is run"),
    'eval "$(ama completion zsh)"': (
        'ama completion zsh | grep -q compdef',
        "a zsh line, and zsh is not installed here: the script it evaluates is checked to "
        "be a zsh completion script"),
}


def instead(command: str, world: World) -> str:
    """The command line to run for ``command``: itself, or what RUN_INSTEAD says."""
    if command in RUN_INSTEAD:
        return RUN_INSTEAD[command][0].format(**vars(world))
    return command


def _is_serve(command: str) -> bool:
    return command.startswith("ama-server serve")


# -- the worlds ------------------------------------------------------------------------------

SETUP = r"""
set -euo pipefail
cd "$WORK"
ama class init ml-models --description 'Trained models' >/dev/null
ama class init imagenet-subsets >/dev/null
upload() { ama upload -m "$1" >/dev/null; }
# imagenet-subsets/1..3; 3 has versions 0.0.0 to 0.0.2 and the alias tiny.
for n in 1 2 3; do
  mkdir "in$n" && cd "in$n" && ama init imagenet-subsets >/dev/null
  mkdir train && echo "img $n" > train/a.jpg && ama add . >/dev/null && upload "set $n"
  cd ..
done
cd in3
for v in 1 2; do echo "img 3.$v" > train/a.jpg; ama update --all >/dev/null; upload "v$v"; done
ama alias add tiny
cd ..
# ml-models/1, versions 0.0.0 to 0.0.2, aliases prod-resnet and prod; ml-models/2.
mkdir m && cd m && ama init ml-models >/dev/null
head -c 3000 /dev/urandom > weights.bin
echo onnx > model.onnx && echo a > model.pt && echo 'lr: 1' > config.yaml
mkdir -p data weights scratch && echo x,y > data/train.csv && echo 1,2 > data/test.csv
echo w > weights/w.bin && echo old > old.csv && echo scratch > scratch/notes.txt
ama add . >/dev/null && upload first
echo b > model.pt && echo 'lr: 0.1' > config.yaml && ama update --all >/dev/null && upload second
echo c > model.pt && ama update --all >/dev/null && upload third
ama alias add prod-resnet >/dev/null && ama alias add prod >/dev/null
cd .. && mkdir m2 && cd m2 && ama init ml-models >/dev/null
echo base > model.pt && ama add . >/dev/null && upload baseline
cd ../m
# The asset directory the examples stand in: staged changes, a scratch file, a schema...
echo '{"type": "object"}' > schema.json && echo '{}' > rules.json
echo '{"source": "example"}' > meta.json && echo scratch > scratch.txt
ama inputs add imagenet-subsets/3/0.0.1 --label training-data >/dev/null
ama update-ref refs/heads/main "$(ama rev-parse HEAD~1)" ''
ama remote add team "file://$WORK/team-remote" >/dev/null && ama remote default local >/dev/null
# An empty folder for the examples that make a new directory (init, clone).
mkdir "$WORK/new" && cp schema.json rules.json "$WORK/new"
# A git repository that uses imagenet-subsets/3 in data/train and an asset in data/labels.
cd "$WORK" && mkdir repo && cd repo && git init -q && ama hooks install >/dev/null
ama git add imagenet-subsets/3/0.0.1 --path data/train >/dev/null
mkdir -p data/labels && cd data/labels && ama init imagenet-subsets >/dev/null
echo cat > labels.txt && ama add . >/dev/null && upload labels && cd ../..
ama git add data/labels >/dev/null
git add -A && git commit -qm 'use assets'
"""

def environment(root: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("AMA_", "ASSET_SERVER_", "GIT_")) and k != "HOME"}
    return {**keep, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(root / "home"), "AMA_HOME": str(root / "home" / ".ama"),
            "WORK": str(root / "work"), "AMA_AUTHOR_NAME": "Test User",
            "AMA_AUTHOR_EMAIL": "test@example.org", "GIT_AUTHOR_NAME": "Test User",
            "GIT_AUTHOR_EMAIL": "test@example.org", "GIT_COMMITTER_NAME": "Test User",
            "GIT_COMMITTER_EMAIL": "test@example.org", "GIT_CONFIG_NOSYSTEM": "1"}


def bash(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The limit only catches a command that hangs: building the shared world runs some 40
    # commands, which on a busy 2-core machine took longer than a minute.
    return subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def local_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    (root / "home").mkdir()
    (root / "work").mkdir()
    done = bash(SETUP, environment(root), root / "work")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def copy_world(world: Path, tmp_path: Path) -> Path:
    """A copy of ``world`` under ``tmp_path``, the absolute paths it records moved with it."""
    import sqlite3

    root = tmp_path / "w"
    shutil.copytree(world, root, symlinks=True)
    for text in (root / "home" / ".ama" / "worktrees", root / "home" / ".ama-server" /
                 "server.toml"):
        if text.exists():
            text.write_text(text.read_text().replace(str(world), str(root)))
    for database in (root / "home" / ".ama" / "remote" / "ama.db",
                     root / "home" / ".ama-server" / "ama.db"):
        if database.exists():
            db = sqlite3.connect(database)
            with db:
                db.execute("UPDATE projects SET storage_url = replace(storage_url, ?, ?)",
                           (str(world), str(root)))
            db.close()
    return root


@dataclass
class World:
    root: Path
    url: str = ""
    port: int = 0
    s3: str = ""
    database: str = ""
    token: str = ""
    asset_hash: str = ""
    prefix: str = ""

    def substitute(self, command: str) -> str:
        for pattern, replacement, _why in SUBSTITUTIONS:
            command = command.replace(pattern, replacement.format(**vars(self)))
        return command


# Shell variables the examples use, set to ids of the world.
VARIABLES = {
    "ID": "HEAD", "NEW": "HEAD", "OLD": "HEAD~1", "PREV": "HEAD~1",
    "TREE": "HEAD^{tree}", "DATA": "HEAD^{tree}",
}


def world_variables(env: dict[str, str], asset: Path) -> dict[str, str]:
    found = {name: bash(f"ama rev-parse '{rev}'", env, asset).stdout.strip()
             for name, rev in VARIABLES.items()}
    found["URL"] = f"file://{asset / 'weights.bin'}"
    return found


def cwd_of(command: str, root: Path) -> Path:
    """Where a user would stand: in the git repository for the git examples, in an empty
    folder to make a new asset directory or class, else in the asset directory."""
    if re.search(r"\b(ama git|git ama|ama hooks)\b", command):
        return root / "work" / "repo"
    if re.match(r"ama (init|clone|class init) |ama auth signup", command):
        return root / "work" / "new"
    return root / "work" / "m"


def expected_code(example: Example) -> int:
    """The exit code an example demonstrates: 0 unless its text says 'exits N'."""
    found = re.search(r"\bexits? (?:with )?(\d+)", example.text)
    return int(found.group(1)) if found else 0


def run_example(example: Example, world: World, env: dict[str, str],
                cwd: Path | None = None) -> None:
    command = world.substitute(instead(example.command, world))
    cwd = cwd or cwd_of(command, world.root)
    done = bash(command, env, cwd)
    assert done.returncode == expected_code(example), (
        f"{example.id}\n(run as: {command!r} in {cwd})\nexited {done.returncode}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")


# -- which examples run where ----------------------------------------------------------------


def needs_server(command: str) -> bool:
    return bool(re.search(r"ama-server|ama auth|ama admin|ama project (?!create)|"
                          r"https://ama\.example\.org",
                          command))


def _unique(examples: list[Example]) -> list[Example]:
    return sorted({e.command: e for e in examples}.values(), key=lambda e: e.id)


ALL = command_examples()
RUN = [e for e in ALL if e.command not in SPECIAL]
LOCAL = _unique([e for e in RUN if not needs_server(e.command)])
SERVER = _unique([e for e in RUN if needs_server(e.command) and not _is_serve(e.command)])
SERVE = _unique([e for e in RUN if _is_serve(e.command)])


@pytest.fixture(scope="module")
def local_variables(local_world: Path) -> dict[str, str]:
    env = environment(local_world)
    found = world_variables(env, local_world / "work" / "m")
    found["asset_hash"] = bash("ama info --hash", env, local_world / "work" / "m").stdout.strip()
    return found


@pytest.mark.parametrize("example", LOCAL, ids=lambda e: e.id)
def test_local_example(example: Example, local_world: Path, local_variables: dict[str, str],
                       tmp_path: Path) -> None:
    root = copy_world(local_world, tmp_path)
    variables = {k: v.replace(str(local_world), str(root)) for k, v in local_variables.items()}
    env = {**environment(root), **{k: v for k, v in variables.items() if k.isupper()},
           **home_of(example.command, root)}
    world = World(root, asset_hash=variables["asset_hash"], prefix=variables["ID"][:4])
    run_example(example, world, env)


def home_of(command: str, root: Path) -> dict[str, str]:
    """A home with no classes for the examples that create the classes the world has."""
    if re.match(r"ama class init ", command):
        return {"HOME": str(root / "fresh"), "AMA_HOME": str(root / "fresh" / ".ama")}
    return {}


# -- the team server -------------------------------------------------------------------------

# The server world: ~/.ama-server set up as the README says (an admin alice, bob, the
# project vision on moto's S3 with bob a writer), the client's remote team on it. Each
# line runs in this process (:func:`in_process`): set-up, not an example.
SERVER_SETUP: list[tuple[str, ...]] = [
    ("ama-server", "init", "--admin", "alice", "--email", "alice@example.org"),
    ("ama-server", "user", "add", "bob", "--email", "bob@example.org"),
    ("ama-server", "project", "add", "vision", "--storage", "{S3}/vision"),
    ("ama-server", "project", "grant", "vision", "bob", "writer"),
    ("ama", "remote", "remove", "team"),
]


def s3_environment(s3_server: str) -> dict[str, str]:
    """A bucket on moto (made if missing: other tests on this worker reset moto after
    theirs) and the environment that points boto3 at it."""
    import boto3

    env = {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if "ama-examples" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="ama-examples")
    return {**env, "S3": "s3://ama-examples"}


@pytest.fixture
def s3_world(s3_server: str) -> dict[str, str]:
    return s3_environment(s3_server)


@pytest.fixture(scope="module")
def server_world(local_world: Path, s3_server: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ama.cli.main import cli
    from ama_remote.cli import cli as server_cli

    root = copy_world(local_world, tmp_path_factory.mktemp("server-world"))
    env: dict[str, str | None] = {**environment(root), **s3_environment(s3_server)}
    # This fixture may be set up before a test's environment is scrubbed: what environment()
    # leaves out of bash's environment is unset here too.
    env.update({k: None for k in os.environ if k not in env})
    for program, *args in SERVER_SETUP:
        out = in_process(server_cli if program == "ama-server" else cli, env, root / "work",
                         *(a.format(**env) for a in args))
        if args[0] == "init":
            (root / "home" / "alice.token").write_text(out)
    return root


def server_state(command: str) -> str:
    """What the example starts from: no server yet (init), a server without what the
    example adds (user add, project add), or the full server world."""
    if re.search(r"ama-server init\b", command):
        return "none"
    if re.search(r"ama-server (user|project) add\b", command):
        return "bare"
    return "full"


@pytest.mark.parametrize("example", SERVER, ids=lambda e: e.id)
def test_server_example(example: Example, server_world: Path, s3_world: dict[str, str],
                        tmp_path: Path) -> None:
    root = copy_world(server_world, tmp_path)
    env = {**environment(root), **s3_world}
    state = server_state(example.command)
    home = root / "home" / ".ama-server"
    if state == "none":
        shutil.rmtree(home)
    elif state == "bare":
        from ama_remote.cli import cli as server_cli

        shutil.rmtree(home)
        in_process(server_cli, env, root, "init", "--admin", "alice", "--email",
                   "alice@example.org")
    world = World(root, s3=s3_world["S3"], port=free_port(),
                  token=(root / "home" / "alice.token").read_text().strip())
    server = None
    if not re.search(r"\bama-server\b", example.command):  # a client example
        from ama.cli.main import cli

        server = start_server(env, tmp_path / "server.log", workers=1)
        world.url = server.url
        if not example.command.startswith("ama remote add team"):
            work = root / "work"
            in_process(cli, env, work, "remote", "add", "team", server.url)
            in_process(cli, env, work, "remote", "default", "team")
            in_process(cli, env, work, "auth", "login", "--token", world.token)
            in_process(cli, env, work, "project", "activate", "vision")
    try:
        run_example(example, world, env)
    finally:
        if server is not None:
            server.stop_soon()


def serve_script(command: str, url: str) -> str:
    """``command`` (an ``ama-server serve``) started in the background, waited for until it
    answers, then stopped: it runs until stopped, so 'exits 0' means it stops cleanly."""
    return (f"{command} & pid=$!\n"
            f"until curl -s -o /dev/null {url}/v1/auth/me; do\n"
            "  kill -0 $pid || exit 99\n"  # it died before answering
            "  sleep 0.1\n"
            "done\n"
            "kill -TERM $pid && wait $pid\n")


@pytest.mark.parametrize("example", SERVE, ids=lambda e: e.id)
def test_serve_example(example: Example, server_world: Path, s3_world: dict[str, str],
                       tmp_path: Path) -> None:
    root = copy_world(server_world, tmp_path)
    env = {**environment(root), **s3_world}
    world = World(root, s3=s3_world["S3"], port=free_port())
    command = world.substitute(example.command)
    done = bash(serve_script(command, f"http://127.0.0.1:{world.port}"), env, root / "work")
    assert done.returncode == 0, f"{example.id}\n{command}\n{done.stdout}{done.stderr}"


# -- the README and the demo -----------------------------------------------------------------


def readme_lines() -> list[str]:
    """Every line of the README's ``sh`` blocks, in order, without its trailing comment."""
    return [re.sub(r"\s{2,}#.*$", "", line) for block in readme_blocks()
            for line in block.command.splitlines() if line.strip()]


def test_readme_runs_top_to_bottom(s3_world: dict[str, str], tmp_path: Path) -> None:
    """The README's blocks run in one shell, in order, as a newcomer would paste them: the
    local flow, then a team server (served in the background) and a client on it."""
    root = tmp_path / "readme"
    (root / "home").mkdir(parents=True)
    (root / "work").mkdir()
    env = {**environment(root), **s3_world}
    world = World(root, s3=s3_world["S3"], port=free_port())
    world.url = f"http://127.0.0.1:{world.port}"
    script = ["set -euo pipefail", "base=$PWD", "cd() { builtin cd \"$@\"; }"]
    for line in readme_lines():
        if line in SPECIAL:
            continue
        world.token = "$token"
        command = instead(line, world)
        if line.startswith("ama-server init"):
            script.append(f"token=$({world.substitute(command)})")
        elif _is_serve(line):
            command = world.substitute(command)
            script.append(f"{command} >$base/serve.log 2>&1 & serving=$!")
            script.append("trap 'kill -TERM $serving; wait $serving' EXIT")
            script.append(f"until curl -s -o /dev/null {world.url}/v1/auth/me; do "
                          "kill -0 $serving; sleep 0.1; done")
        else:
            script.append(world.substitute(command))
    done = bash("\n".join(script), env, root / "work")
    assert done.returncode == 0, "\n".join(script) + f"\n{done.stdout}{done.stderr}"


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**environment(tmp_path), "TMPDIR": str(tmp_path)}
    done = subprocess.run([str(REPO / "demo" / "demo.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "weights.bin is byte for byte the original" in done.stdout


# -- nothing left out ------------------------------------------------------------------------


def test_every_example_is_run() -> None:
    """Every example of every command is run by one of the tests above or listed, with its
    reason, in SPECIAL; the tables name only lines the documentation still has."""
    documented = {e.command for e in ALL} | set(readme_lines())
    run = {e.command for e in LOCAL + SERVER + SERVE} | (set(readme_lines()) - set(SPECIAL))
    assert documented - set(SPECIAL) == run
    assert len(ALL) > 100  # the walk found the commands' examples, not an empty table
    assert set(SPECIAL) <= documented, "SPECIAL names lines no documentation shows"
    assert set(RUN_INSTEAD) <= documented, "RUN_INSTEAD names lines no documentation shows"
    stale = [pattern for pattern, _, _ in SUBSTITUTIONS
             if not any(pattern in line for line in documented)]
    assert not stale, f"SUBSTITUTIONS for lines no documentation shows: {stale}"
