"""Walking an asset directory: .amaignore, and refusing what cannot be content."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from ama.plumbing.errors import NotFound
from ama.plumbing.worktree import UnsupportedFiles, walk


def make(root: Path, *paths: str) -> None:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def walked(root: Path, under: str = "", link_root: Path | None = None) -> list[str]:
    return sorted(p for p, _st in walk(root, under, link_root))


def test_walk_yields_regular_files_with_their_lstat(tmp_path: Path) -> None:
    make(tmp_path, "a.txt", "d/b.txt", "d/e/c.txt", ".ama/index", ".hidden")
    (tmp_path / "empty-dir").mkdir()
    found = dict(walk(tmp_path))
    assert sorted(found) == [".hidden", "a.txt", "d/b.txt", "d/e/c.txt"]
    assert found["d/b.txt"].st_size == len("d/b.txt")
    assert walked(tmp_path, "d") == ["d/b.txt", "d/e/c.txt"]
    assert walked(tmp_path, "d/b.txt") == ["d/b.txt"]
    with pytest.raises(NotFound, match="nope"):
        walked(tmp_path, "nope")


def test_amaignore_follows_gitignore_rules(tmp_path: Path) -> None:
    (tmp_path / ".amaignore").write_text(
        "# comment\n"
        "*.log\n"
        "!keep.log\n"
        "build/\n"
        "/top-only.txt\n"
        "**/cache\n"
        "data/*.tmp\n"
        "\\#literal\n"
    )
    make(tmp_path, "a.log", "sub/b.log", "keep.log", "sub/keep.log", "build/x", "src/build/y",
         "top-only.txt", "sub/top-only.txt", "cache/z", "deep/er/cache/z", "data/t.tmp",
         "data/nested/t.tmp", "#literal", "# comment", "main.py")
    (tmp_path / "logs.log").mkdir()  # a folder matched by a file pattern is skipped too
    make(tmp_path, "logs.log/inside")
    assert walked(tmp_path) == sorted([
        ".amaignore", "# comment", "data/nested/t.tmp", "keep.log", "main.py",
        "sub/keep.log", "sub/top-only.txt"])


def test_ignored_special_files_are_skipped_not_refused(tmp_path: Path) -> None:
    (tmp_path / ".amaignore").write_text("*.fifo\nlinks/\n")
    os.mkfifo(tmp_path / "p.fifo")
    (tmp_path / "links").mkdir()
    os.symlink("/etc/hostname", tmp_path / "links" / "l")
    make(tmp_path, "ok")
    assert walked(tmp_path) == [".amaignore", "ok"]


def test_every_unsupported_path_is_named_in_one_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, "good.txt", "sub/good2.txt")
    os.symlink("good.txt", tmp_path / "link")
    os.symlink(tmp_path / "sub", tmp_path / "dirlink")
    os.mkfifo(tmp_path / "sub" / "pipe")
    monkeypatch.chdir(tmp_path / "sub")  # a socket path must be short
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("sock")
        for bad in ("new\nline", "tab\there", "cr\rx"):
            (tmp_path / bad).write_text("x")
        os.close(os.open(os.fsencode(str(tmp_path)) + b"/bad\xffname", os.O_CREAT | os.O_WRONLY))
        found: list[str] = []
        with pytest.raises(UnsupportedFiles) as caught:
            for path, _st in walk(tmp_path):
                found.append(path)
    finally:
        server.close()
    # The good files still come; links are content, a link to a folder is not entered.
    assert sorted(found) == ["dirlink", "good.txt", "link", "sub/good2.txt"]
    problems = dict(caught.value.problems)
    assert problems == {
        "sub/pipe": "is a FIFO (named pipe)",
        "sub/sock": "is a socket",
        repr("new\nline"): "a name cannot contain '\\n'",
        repr("tab\there"): "a name cannot contain '\\t'",
        repr("cr\rx"): "a name cannot contain '\\r'",
        repr("bad\udcffname"): "a name must be valid UTF-8",
    }
    message = caught.value.message
    assert message.startswith("6 path(s) cannot be added:")
    for shown in problems:
        assert f"  {shown}: " in message
    assert ".amaignore" in (caught.value.hint or "")
    assert caught.value.exit_code == 2


def test_walking_one_special_file_names_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UnsupportedFiles, match="pipe: is a FIFO"):
        walked(tmp_path, "pipe")


def test_a_symlink_into_the_store_counts_as_its_file(tmp_path: Path) -> None:
    store = tmp_path / "objects"
    make(store, "ab/cdef")
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(store / "ab" / "cdef", work / "linked")
    os.symlink(tmp_path / "elsewhere", work / "dangling")
    found = dict(walk(work, link_root=store))
    assert sorted(found) == ["dangling", "linked"]
    assert found["linked"].st_size == len("ab/cdef")  # the target's stat, not the link's
    assert stat.S_ISLNK(found["dangling"].st_mode)  # any other link: itself
