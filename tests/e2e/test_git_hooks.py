"""Git repositories that use assets, through the installed ``ama``/``git ama`` and real git:
``git commit``, ``git push`` to a bare repository, ``git checkout`` and ``git merge`` with
ama's hooks installed, against the embedded remote and a real ama-server."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import installed
from tests.services.server import RunningServer

# Names a shell would misread: every one must reach git and ama as one argument, unchanged.
ODD_DIR = "data/it's \"$(touch PWNED)\" é"
ODD_BRANCH = "feature/$(touch${IFS}PWNED)-'q'-é"  # a ref name holds no space
ODD_MESSAGE = "use \"$(touch PWNED)\" `touch PWNED` 'données'"


class Tools:
    """``git``, ``ama`` and ``git ama`` with one environment; each returns the process."""

    def __init__(self, tmp_path: Path, extra: dict[str, str]) -> None:
        self.tmp = tmp_path
        bin_dir = str(Path(installed()).parent)
        self.env = {**os.environ, **extra,
                    "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
                    "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada",
                    "GIT_AUTHOR_EMAIL": "ada@example.org", "GIT_COMMITTER_NAME": "Ada",
                    "GIT_COMMITTER_EMAIL": "ada@example.org", "LC_ALL": "C.UTF-8"}

    def run(self, argv: list[str], cwd: Path, code: int | None = 0,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True,
                              input=input, timeout=120)
        if code is not None:
            assert done.returncode == code, (
                f"{argv} exited {done.returncode}, not {code}:\n{done.stdout}\n{done.stderr}")
        return done

    def git(self, *args: str, cwd: Path, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return self.run(["git", *args], cwd, code)

    def ama(self, *args: str, cwd: Path, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return self.run([installed(), *args], cwd, code)

    def repo(self, name: str = "repo") -> tuple[Path, Path]:
        """A work tree with one commit and its bare ``origin``; hooks installed."""
        bare = self.tmp / f"{name}.git"
        work = self.tmp / name
        self.git("init", "-q", "--bare", "-b", "main", str(bare), cwd=self.tmp)
        self.git("init", "-q", "-b", "main", str(work), cwd=self.tmp)
        (work / "train.py").write_text("print('train')\n")
        self.git("add", "train.py", cwd=work)
        self.git("commit", "-q", "-m", "start", cwd=work)
        self.git("remote", "add", "origin", str(bare), cwd=work)
        self.ama("hooks", "install", cwd=work)
        return work, bare

    def publish(self) -> str:
        """ml-models/1 with version 0.0.0 (w.txt = one) and 0.0.1 (w.txt = two)."""
        src = self.tmp / "src"
        src.mkdir()
        self.ama("class", "init", "ml-models", cwd=self.tmp)
        self.ama("init", "ml-models", cwd=src)
        (src / "w.txt").write_text("one")
        self.ama("add", ".", cwd=src)
        self.ama("upload", "-m", "first", cwd=src)
        (src / "w.txt").write_text("two")
        self.ama("update", "w.txt", cwd=src)
        self.ama("upload", "-m", "second", cwd=src)
        return "ml-models/1"


@pytest.fixture(params=["embedded", "ama-server"])
def tools(request: pytest.FixtureRequest, tmp_path: Path,
          start_ama_server: Callable[..., RunningServer]) -> Tools:
    if request.param == "embedded":
        return Tools(tmp_path, {})
    server = start_ama_server()
    tools = Tools(tmp_path, {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project})
    tools.ama("remote", "add", "team", server.url, cwd=tmp_path)
    tools.ama("remote", "default", "team", cwd=tmp_path)
    return tools


@pytest.fixture
def local(tmp_path: Path) -> Tools:
    return Tools(tmp_path, {})


def lock_text(work: Path) -> str:
    return (work / "ama.lock").read_text(encoding="utf-8")


def no_shell_ran(tmp_path: Path) -> None:
    assert not list(tmp_path.rglob("PWNED")), "a name was run through a shell"


def test_checkout_and_merge_bring_the_locked_versions(tools: Tools, tmp_path: Path) -> None:
    name = tools.publish()
    work, bare = tools.repo()
    out = tools.git("ama", "add", f"{name}/0.0.0", "--path", ODD_DIR, cwd=work).stdout
    assert out == f"{ODD_DIR}: {name} 0.0.0\n"
    checkout = work / ODD_DIR
    assert (checkout / "w.txt").read_text() == "one"
    assert 'version = "0.0.0"' in lock_text(work)
    # The checkout folder is ignored by git, the lock is not.
    tools.git("add", "ama.lock", ".gitignore", cwd=work)
    assert tools.git("status", "--porcelain", "--untracked-files=all", cwd=work).stdout == (
        "A  .gitignore\nA  ama.lock\n")
    tools.git("commit", "-q", "-m", ODD_MESSAGE, cwd=work)
    assert tools.git("log", "-1", "--format=%s", cwd=work).stdout == ODD_MESSAGE + "\n"

    # On a branch, move the asset to 0.0.1 and lock that.
    tools.git("checkout", "-q", "-b", ODD_BRANCH, cwd=work)
    tools.ama("switch", "--version", "0.0.1", cwd=checkout)
    tools.ama("git", "add", ODD_DIR, cwd=work)
    tools.git("commit", "-q", "-m", "use 0.0.1", "ama.lock", cwd=work)
    assert tools.ama("git", "status", cwd=work).stdout == f"{ODD_DIR}: {name} 0.0.1: in step\n"
    tools.git("push", "-q", "origin", ODD_BRANCH, "main", cwd=work)
    assert tools.git("rev-parse", ODD_BRANCH, cwd=bare).stdout == tools.git(
        "rev-parse", "HEAD", cwd=work).stdout

    # Checking out the older commit switches the asset back.
    done = tools.git("checkout", "-q", "main", cwd=work)
    assert f"{ODD_DIR}: {name} 0.0.1 -> 0.0.0" in done.stderr
    assert (checkout / "w.txt").read_text() == "one"
    tools.git("checkout", "-q", "--detach", "HEAD", cwd=work)
    tools.git("checkout", "-q", ODD_BRANCH, cwd=work)
    assert (checkout / "w.txt").read_text() == "two"
    tools.git("checkout", "-q", "main", cwd=work)
    assert (checkout / "w.txt").read_text() == "one"

    # A merge that brings the new version switches to it.
    done = tools.git("merge", "-q", ODD_BRANCH, cwd=work)
    assert f"{name} 0.0.0 -> 0.0.1" in done.stderr
    assert (checkout / "w.txt").read_text() == "two"
    assert tools.git("ama", "status", cwd=work).stdout.endswith("in step\n")
    no_shell_ran(tmp_path)


def test_temp_asset_blocks_the_push_until_uploaded(tools: Tools, tmp_path: Path) -> None:
    tools.ama("class", "init", "ml-models", cwd=tmp_path)
    work, bare = tools.repo()
    new = work / ODD_DIR
    new.mkdir(parents=True)
    tools.ama("init", "ml-models", cwd=new)
    (new / "labels.csv").write_text("cat,dog\n")
    tools.ama("add", ".", cwd=new)
    tools.ama("git", "add", ODD_DIR, cwd=work)
    assert 'version = "temp_"' in lock_text(work)
    tools.git("add", "ama.lock", ".gitignore", cwd=work)
    # A never-uploaded asset may be committed (with a note) but not pushed.
    done = tools.git("commit", "-q", "-m", "labels", cwd=work)
    assert "never uploaded" in done.stderr
    done = tools.git("push", "origin", "main", cwd=work, code=1)
    assert "never uploaded" in done.stderr
    assert "ama upload -m MESSAGE" in done.stderr
    assert "ama git add" in done.stderr
    assert tools.git("rev-parse", "-q", "--verify", "refs/heads/main", cwd=bare,
                     code=1).stdout == ""
    # The fix the message names: upload, record, commit (here folded into the commit).
    tools.ama("upload", "-m", "labels", cwd=new)
    tools.ama("git", "add", ODD_DIR, cwd=work)
    tools.git("commit", "-q", "--amend", "--no-edit", "ama.lock", cwd=work)
    tools.git("push", "-q", "origin", "main", cwd=work)
    assert tools.git("rev-parse", "main", cwd=bare).stdout == tools.git(
        "rev-parse", "HEAD", cwd=work).stdout
    no_shell_ran(tmp_path)


def test_commit_and_push_stop_on_what_the_remote_lacks(local: Tools, tmp_path: Path) -> None:
    name = local.publish()
    work, bare = local.repo()
    local.ama("git", "add", f"{name}/0.0.0", "--path", "data", cwd=work)
    local.git("add", "ama.lock", ".gitignore", cwd=work)
    local.git("commit", "-q", "-m", "data", cwd=work)
    # A modified checkout stops the commit, whatever the commit touches.
    (work / "data" / "w.txt").write_text("changed here")
    (work / "train.py").write_text("print('v2')\n")
    done = local.git("commit", "-q", "-a", "-m", "v2", cwd=work, code=1)
    assert "data (ml-models/1 0.0.0) has changes that are not uploaded: w.txt" in done.stderr
    assert "cd data && ama upload -m MESSAGE" in done.stderr
    local.ama("discard", "--all", cwd=work / "data")
    local.git("commit", "-q", "-a", "-m", "v2", cwd=work)
    # After a check passed, a checkout switched to another version stops the next commit.
    local.ama("switch", "--version", "0.0.1", cwd=work / "data")
    done = local.git("commit", "-q", "--allow-empty", "-m", "empty", cwd=work, code=1)
    assert "data holds ml-models/1 0.0.1, but ama.lock names ml-models/1 0.0.0" in done.stderr
    local.ama("switch", "--version", "0.0.0", cwd=work / "data")
    local.git("commit", "-q", "--allow-empty", "-m", "empty", cwd=work)
    # A lock naming a version the remote does not have stops the commit…
    text = lock_text(work)
    (work / "ama.lock").write_text(text.replace('"0.0.0"', '"0.0.7"'))
    local.git("add", "ama.lock", cwd=work)
    done = local.git("commit", "-q", "-m", "bad", cwd=work, code=1)
    assert "ml-models/1 0.0.7, which is not on remote local (project default)" in done.stderr
    assert "versions there: 0.0.0, 0.0.1" in done.stderr
    # …and, committed anyway, the push.
    local.git("commit", "-q", "--no-verify", "-m", "bad", cwd=work)
    done = local.git("push", "origin", "main", cwd=work, code=1)
    assert "0.0.7, which is not on remote local" in done.stderr
    assert local.git("rev-parse", "-q", "--verify", "refs/heads/main", cwd=bare,
                     code=1).stdout == ""
    # Syncing by hand follows the lock in the work tree.
    local.git("checkout", "-q", "HEAD~3", cwd=work)
    (work / "ama.lock").write_text(text.replace('"0.0.0"', '"0.0.1"'))
    local.ama("git", "sync", cwd=work)
    assert (work / "data" / "w.txt").read_text() == "two"
    local.git("checkout", "-q", "--", "ama.lock", cwd=work)
    local.ama("git", "sync", cwd=work)
    assert (work / "data" / "w.txt").read_text() == "one"
    # A sync that fails leaves git's checkout done and says how to finish.
    done = local.git("checkout", "-q", "main", cwd=work, code=1)
    assert "could not bring it to ml-models/1/0.0.7" in done.stderr
    assert "Git's checkout is complete; finish with: ama git sync" in done.stderr
    assert local.git("symbolic-ref", "--short", "HEAD", cwd=work).stdout == "main\n"
    assert (work / "data" / "w.txt").read_text() == "one"
    no_shell_ran(tmp_path)


def write_hook(path: Path, body: str, mode: int = 0o755) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)


def test_existing_hooks_are_chained_and_restored(local: Tools, tmp_path: Path) -> None:
    name = local.publish()
    work, bare = local.repo()
    local.ama("hooks", "uninstall", cwd=work)
    # Hooks under core.hooksPath (a folder with a space), one of them already there.
    hooks = work / "my hooks"
    local.git("config", "core.hooksPath", "my hooks", cwd=work)
    log = tmp_path / "hook.log"
    original = f'echo "pre-push $# $1" >> "{log}"; cat >> "{log}"; exit ${{FAIL:-0}}\n'
    write_hook(hooks / "pre-push", original)
    write_hook(hooks / "pre-commit", f'echo pre-commit >> "{log}"\n')
    done = local.ama("hooks", "install", cwd=work)
    assert "pre-push: chained" in done.stdout
    assert "post-merge: installed" in done.stdout
    assert (hooks / "pre-push.ama-chained").read_text() == "#!/bin/sh\n" + original
    assert not (work / ".git" / "hooks" / "pre-push").exists()
    local.ama("git", "add", f"{name}/0.0.1", "--path", "m", cwd=work)
    local.git("add", "ama.lock", ".gitignore", cwd=work)
    local.git("commit", "-q", "-m", "m", cwd=work)
    local.git("push", "-q", "origin", "main", cwd=work)
    sha = local.git("rev-parse", "HEAD", cwd=work).stdout.strip()
    # The previous hook ran first, with git's arguments and standard input.
    assert log.read_text().splitlines() == [
        "pre-commit", "pre-push 2 origin", f"refs/heads/main {sha} refs/heads/main {'0' * 40}"]
    # Its failure still stops the push, and its exit code is the hook's.
    local.git("commit", "-q", "--allow-empty", "-m", "more", cwd=work)
    local.env["FAIL"] = "7"
    local.git("push", "-q", "origin", "main", cwd=work, code=1)
    assert local.run([str(hooks / "pre-push"), "origin", str(bare)], work, code=7,
                     input="").returncode == 7
    del local.env["FAIL"]
    # Reinstalling updates ama's hooks in place and keeps the chained one.
    assert "pre-push: updated" in local.ama("hooks", "install", cwd=work).stdout
    # A hook git would not run (not executable) is refused, then set aside with --force.
    local.ama("hooks", "uninstall", cwd=work)
    assert (hooks / "pre-push").read_text() == "#!/bin/sh\n" + original
    assert not (hooks / "pre-push.ama-chained").exists()
    write_hook(hooks / "post-merge", "exit 0\n", mode=0o644)
    done = local.ama("hooks", "install", cwd=work, code=1)
    assert "post-merge: it is not executable" in done.stderr
    assert "--force" in done.stderr
    assert not (hooks / "pre-push.ama-chained").exists()
    done = local.ama("hooks", "install", "--force", cwd=work)
    assert "post-merge: replaced" in done.stdout
    # Uninstalling restores every previous hook as it was.
    local.ama("hooks", "uninstall", cwd=work)
    assert sorted(p.name for p in hooks.iterdir()) == ["post-merge", "pre-commit", "pre-push"]
    assert (hooks / "pre-push").read_text() == "#!/bin/sh\n" + original
    assert stat.S_IMODE((hooks / "post-merge").stat().st_mode) == 0o644
    assert stat.S_IMODE((hooks / "pre-push").stat().st_mode) == 0o755


def test_remove_forgets_the_checkout(local: Tools) -> None:
    name = local.publish()
    work, _bare = local.repo()
    local.ama("git", "add", name, "--path", "d e", cwd=work)
    assert 'version = "0.0.1"' in lock_text(work)
    assert "/d e/\n" in (work / ".gitignore").read_text()
    (work / "d e" / "w.txt").write_text("mine")
    done = local.ama("git", "remove", "d e", cwd=work, code=1)
    assert "not uploaded" in done.stderr
    assert (work / "d e").is_dir()
    local.ama("git", "remove", "--keep", "d e", cwd=work)
    assert "[[asset]]" not in lock_text(work)
    assert "/d e/" not in (work / ".gitignore").read_text()
    assert (work / "d e" / "w.txt").read_text() == "mine"
    local.ama("git", "remove", "d e", cwd=work, code=3)


def test_hooks_need_a_git_work_tree(local: Tools, tmp_path: Path) -> None:
    done = local.ama("hooks", "install", cwd=tmp_path, code=3)
    assert "not in a git work tree" in done.stderr


def test_git_add_of_another_version_switches_the_checkout_and_repins_it(local: Tools) -> None:
    name = local.publish()
    work, _bare = local.repo()
    local.ama("git", "add", f"{name}/0.0.0", "--path", "data", cwd=work)
    assert (work / "data" / "w.txt").read_text() == "one"
    local.ama("git", "add", f"{name}/0.0.1", "--path", "data", cwd=work)
    assert (work / "data" / "w.txt").read_text() == "two"
    assert 'version = "0.0.1"' in lock_text(work)
    # No version: the latest, as for a first add. Changes not uploaded are never overwritten.
    local.ama("git", "add", f"{name}/0.0.0", "--path", "data", cwd=work)
    (work / "data" / "w.txt").write_text("mine")
    done = local.ama("git", "add", name, "--path", "data", cwd=work, code=1)
    assert "not uploaded" in done.stderr or "--force" in done.stderr
    assert (work / "data" / "w.txt").read_text() == "mine"
    assert 'version = "0.0.0"' in lock_text(work)
    local.ama("discard", "--all", cwd=work / "data")
    local.ama("git", "add", name, "--path", "data", cwd=work)
    assert 'version = "0.0.1"' in lock_text(work)
