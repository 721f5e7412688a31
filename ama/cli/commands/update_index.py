"""ama update-index: stage files in the index, remove them, or refresh its stat cache."""

from __future__ import annotations

import os
import stat
import sys

import click

from ama.cli.command import Env, command, read_records
from ama.plumbing.errors import AmaError, BadInput, NotFound


class NeedsUpdate(AmaError):
    """Staged files whose content changed (``--refresh``)."""


@command(
    "update-index",
    examples=[
        ("Stage two files:", "ama update-index --add data/train.csv data/test.csv"),
        ("Stage every file below data/, NUL-separated:",
         "find data -type f -print0 | ama update-index --add --stdin -z"),
        ("Unstage a file that was deleted:", "ama update-index --remove old.csv"),
        ("Update the stat cache after a copy that kept the bytes:",
         "ama update-index --refresh"),
    ],
    see_also=["ama-ls-files(1)", "ama-write-tree(1)", "ama-hash-object(1)", "ama-format(5)"],
    exit_codes={0: "success", 1: "--refresh found files whose content changed",
                2: "bad usage, or a path that cannot be staged", 3: "a path does not exist"},
)
@click.option("--add", is_flag=True, help="Stage files that are not in the index yet.")
@click.option("--remove", is_flag=True, help="Unstage given files that no longer exist.")
@click.option("--force-remove", is_flag=True, help="Unstage given files even if they exist.")
@click.option("--refresh", is_flag=True,
              help="Re-check every staged file's stat, re-hashing only changed ones.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the paths from stdin.")
@click.option("-z", "nul", is_flag=True, help="With --stdin: paths end with NUL.")
@click.argument("paths", nargs=-1)
def command(add: bool, remove: bool, force_remove: bool, refresh: bool, from_stdin: bool,
            nul: bool, paths: tuple[str, ...]) -> None:
    """Update the index of the asset directory with PATHs (relative to the current directory).

    A staged file is hashed and stored in the asset store, and recorded with its stat so
    later checks re-hash only files that changed. Without --add only files already staged
    are updated; with --remove a staged file that no longer exists is unstaged. A symbolic
    link is staged as a link when its target stays inside the asset, and refused otherwise.
    Every path is checked before anything is written: one bad path leaves the index and the
    store as they were.
    """
    from ama.plumbing.index import Index, IndexEntry, changes

    env = Env()
    asset_dir = env.asset_dir
    index = Index.read(asset_dir.index_path)
    odb = env.store.objects
    names = list(paths)
    if from_stdin:
        names.extend(read_records(sys.stdin, nul))
    if refresh:
        stale = []
        for change in changes(index, asset_dir.root):
            if change.state == "touched":
                index.add(change.entry)
            else:
                stale.append(change.entry.path)
        index.write()
        if stale:
            for path in sorted(stale):
                click.echo(f"{path}: needs update")
            raise NeedsUpdate(f"{len(stale)} staged file(s) changed",
                              "stage them with 'ama update-index PATH'")
        if not names:
            return
    if not names and not refresh:
        raise click.UsageError("name the paths to update (or use --stdin or --refresh)")
    plan: list[tuple[str, str, os.stat_result | None]] = []
    cwd = os.getcwd()
    root = os.fspath(asset_dir.root)
    for name in names:
        rel = asset_dir.relpath(name, cwd)
        if not rel:
            raise BadInput(f"{name} is the asset directory itself: name files",
                           "use 'ama add .' to stage a whole folder")
        full = f"{root}/{rel}"
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if force_remove or st is None:
            if rel not in index:
                if st is None:
                    raise NotFound(f"{name}: no such file, and it is not staged")
                raise NotFound(f"{name} is not staged, so it cannot be removed")
            if st is not None or remove or force_remove:
                plan.append(("remove", rel, None))
                continue
            raise BadInput(f"{name} no longer exists", "pass --remove to unstage it")
        if stat.S_ISDIR(st.st_mode):
            raise BadInput(f"{name} is a folder: update-index takes files",
                           "list its files with find, or use 'ama add'")
        if stat.S_ISLNK(st.st_mode):
            from ama.plumbing.objects import link_problem

            why = link_problem(rel, os.readlink(full))
            if why is not None:
                from ama.plumbing.worktree import UnsupportedFiles

                raise UnsupportedFiles([(name, f"is a symbolic link: {why}")])
        elif not stat.S_ISREG(st.st_mode):
            from ama.plumbing.worktree import UnsupportedFiles, file_problem

            raise UnsupportedFiles([(name, file_problem(st.st_mode) or "")])
        from ama.plumbing.objects import check_name

        for part in rel.split("/"):
            check_name(part)
        if rel not in index and not add:
            raise BadInput(f"{name} is not staged yet", "pass --add to stage a new file")
        plan.append(("add", rel, st))
    with odb.batch():
        for action, rel, st in plan:
            if action == "remove":
                index.remove(rel)
                continue
            assert st is not None
            if stat.S_ISLNK(st.st_mode):  # a link's content is its target
                oid = odb.write(os.fsencode(os.readlink(f"{root}/{rel}")))
            else:
                oid = odb.write_file(f"{root}/{rel}", st.st_size)
            index.add(IndexEntry.from_stat(rel, oid, st))
    index.write()
