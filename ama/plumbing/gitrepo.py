"""Git repositories that reference assets: the one module that reads git (docs/design.md §5).

Questions git answers best about itself (where its hooks folder is, with ``core.hooksPath``
and linked work trees; what the index holds under ``GIT_INDEX_FILE``) are asked of the
``git`` command, with arguments passed as a list and never through a shell. Walking commits
and reading a file at each of them (``ama.lock`` at every pushed commit) uses pygit2, which
is imported only when such a walk is needed, so hooks that have nothing to check stay fast.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ama.plumbing.errors import AmaError, NotFound


class NotAGitRepo(NotFound):
    """A folder outside any git work tree."""


class GitFailed(AmaError):
    """A git command that ama ran failed."""


def _git(args: list[str], cwd: Path, environ: Mapping[str, str] | None = None,
         input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ if environ is None else environ)
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, input=input,
                              capture_output=True, check=False)
    except FileNotFoundError:
        raise GitFailed("git is not installed (or not on PATH)",
                        "install git, then run the command again") from None
    if check and done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise GitFailed(f"git {args[0]} failed in {cwd}: {message}")
    return done


def _text(data: bytes) -> str:
    return os.fsdecode(data.rstrip(b"\n"))


@dataclass(frozen=True)
class PushedRef:
    """One line git gives the pre-push hook on standard input."""

    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str

    @property
    def deletes(self) -> bool:
        """Whether this push deletes ``remote_ref`` (it pushes no commits then)."""
        return not self.local_sha.strip("0")

    @classmethod
    def parse(cls, text: str) -> list[PushedRef]:
        """Parse pre-push standard input: ``<local ref> <local sha> <remote ref> <remote sha>``
        per line. Ref names cannot hold spaces, so splitting on them is exact."""
        refs = []
        for line in text.splitlines():
            if line.strip():
                parts = line.split(" ")
                if len(parts) != 4:
                    raise GitFailed(f"unexpected pre-push input line {line!r}")
                refs.append(cls(*parts))
        return refs


class GitRepo:
    """A git work tree: its root, its git folder and its hooks folder."""

    def __init__(self, root: Path, git_dir: Path,
                 environ: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.git_dir = git_dir
        self.environ = dict(os.environ if environ is None else environ)
        self._repo = None

    @classmethod
    def discover(cls, start: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] | None = None) -> GitRepo:
        """Open the git work tree holding ``start`` (default: the working directory).

        Raises :class:`NotAGitRepo` outside a work tree (or in a bare repository)."""
        where = Path(start) if start is not None else Path.cwd()
        done = _git(["rev-parse", "--show-toplevel", "--absolute-git-dir"], where, environ,
                    check=False)
        lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
        if done.returncode != 0 or len(lines) != 2:
            raise NotAGitRepo(f"{where} is not in a git work tree",
                              "run this inside a git repository ('git init' makes one)")
        return cls(Path(lines[0]), Path(lines[1]), environ)

    def git(self, *args: str, input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run ``git ARGS`` at the root of the work tree."""
        return _git(list(args), self.root, self.environ, input=input, check=check)

    def hooks_dir(self) -> Path:
        """The folder git runs hooks from: ``core.hooksPath`` when set, else the common git
        folder's ``hooks`` (shared by linked work trees)."""
        out = self.git("rev-parse", "--git-path", "hooks").stdout
        path = Path(_text(out))
        return path if path.is_absolute() else self.root / path

    def staged_blob_id(self, path: str) -> str | None:
        """The id of the blob the index (``GIT_INDEX_FILE`` if set) holds at ``path``."""
        done = self.git("rev-parse", "-q", "--verify", f":{path}", check=False)
        if done.returncode != 0:
            return None
        return _text(done.stdout) or None

    def staged_file(self, path: str) -> bytes | None:
        """The content the index holds at ``path`` (what the next commit records), or None."""
        done = self.git("cat-file", "blob", f":{path}", check=False)
        return done.stdout if done.returncode == 0 else None

    # -- commits, read with pygit2 --

    @property
    def repo(self):  # type: ignore[no-untyped-def]
        if self._repo is None:
            import pygit2

            self._repo = pygit2.Repository(str(self.git_dir))
        return self._repo

    def file_at(self, commit: str, path: str) -> tuple[str, bytes] | None:
        """Return ``(blob id, content)`` of ``path`` in ``commit``, or None if it has none."""
        tree = self.repo[commit].peel(self._commit_type()).tree
        try:
            entry = tree[path]
        except KeyError:
            return None
        blob = self.repo[entry.id]
        return str(entry.id), bytes(blob.data)

    @staticmethod
    def _commit_type():  # type: ignore[no-untyped-def]
        import pygit2

        return pygit2.Commit

    def has_commit(self, sha: str) -> bool:
        try:
            self.repo[sha].peel(self._commit_type())
        except (KeyError, ValueError):
            return False
        return True

    def pushed_commits(self, pushed: list[PushedRef], remote: str) -> Iterator[str]:
        """Yield each commit a push sends: reachable from a pushed local sha and neither from
        the remote ref's old sha (when we have it) nor, for a new remote ref, from any
        ``refs/remotes/<remote>/…`` ref. Each commit once."""
        import pygit2

        seen: set[str] = set()
        for ref in pushed:
            if ref.deletes:
                continue
            walker = self.repo.walk(ref.local_sha, pygit2.enums.SortMode.NONE)
            if ref.remote_sha.strip("0") and self.has_commit(ref.remote_sha):
                walker.hide(ref.remote_sha)
            else:
                prefix = f"refs/remotes/{remote}/"
                for name in self.repo.listall_references():
                    if name.startswith(prefix):
                        target = self.repo.lookup_reference(name).resolve().target
                        if self.has_commit(str(target)):
                            walker.hide(target)
            for commit in walker:
                sha = str(commit.id)
                if sha not in seen:
                    seen.add(sha)
                    yield sha

    # -- .gitignore --

    def is_ignored(self, path: str) -> bool:
        """Whether git ignores ``path`` (relative to the root)."""
        return self.git("check-ignore", "-q", "--no-index", "--", path,
                        check=False).returncode == 0
