"""ama git: the assets a git repository uses, recorded in ama.lock and checked out in it."""

from __future__ import annotations

import sys

import click

from ama.cli.command import group
from ama.cli.commands._metadata import complete_asset
from ama.cli.commands._porcelain import emit_json, json_option, note, progress, quiet_option


def git_ama_args(args: list[str]) -> list[str]:
    """The ``ama`` arguments for ``git ama ARGS``: ``git ama add|remove|status|sync`` are
    ``ama git …``; anything else (``git ama hooks install``) is ``ama …``."""
    if args and args[0] in command.commands:
        return ["git", *args]
    return args


def _repo():  # type: ignore[no-untyped-def]
    from ama.plumbing.gitrepo import GitRepo

    return GitRepo.discover()


@group(
    "git",
    examples=[
        ("Use version 0.0.2 of imagenet-subsets/3 in this repository, in data/train:",
         "ama git add imagenet-subsets/3/0.0.2 --path data/train"),
        ("Record an asset directory made inside the repository (again after each upload):",
         "ama git add data/labels"),
        ("See whether every checkout holds the version ama.lock names:", "ama git status"),
        ("Bring every checkout to the locked versions (after a pull, say):", "ama git sync"),
        ("The same through git:", "git ama sync"),
    ],
    see_also=["ama-hooks(1)", "ama-clone(1)", "ama-switch(1)", "ama-format(5)"],
    exit_codes={0: "success", 1: "a checkout is out of step or could not be brought in step",
                2: "bad input, a damaged ama.lock", 3: "not in a git work tree, no such asset "
                "or checkout", 4: "not allowed by the remote", 5: "the remote cannot be reached"},
)
def command() -> None:
    """Record the asset versions a git repository uses and keep their checkouts in step.

    ama.lock, at the root of the git work tree, lists each asset the code uses: its name,
    version, manifest id, remote and project, and the folder where it is checked out (that
    folder is added to .gitignore). Commit ama.lock with the code; 'ama hooks install' makes
    git check and follow it on commit, push, checkout and merge. These commands also run as
    'git ama ...'.
    """


@command.command("add", examples=[
    ("Check out version 0.0.2 of imagenet-subsets/3 in data/train and record it:",
     "ama git add imagenet-subsets/3/0.0.2 --path data/train"),
    ("Record the version an asset directory of the work tree holds (after an upload):",
     "ama git add data/labels")])
@click.argument("target", metavar="NAME[/VERSION]|DIR", shell_complete=complete_asset)
@click.option("--path", "path", metavar="DIR",
              help="Where to check the asset out (default: CLASS/ORDINAL at the root).")
@quiet_option
@json_option
def add(target: str, path: str | None, quiet: bool, as_json: bool) -> None:
    """Clone NAME[/VERSION] into the work tree and record it in ama.lock, or record DIR, an
    asset directory inside the work tree, at the version it holds (an asset never uploaded
    is recorded too: it can be committed but not pushed). Where the checkout holds NAME
    already, at another version, it is switched to VERSION (default: the latest) and
    re-pinned; changes not uploaded there are refused, as ama switch refuses them."""
    from ama.porcelain.gitsync import add as add_

    with progress("Cloning", not (quiet or as_json)) as bar:
        result = add_(_repo(), target, path, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    entry = result.entry
    shown = entry.name if entry.is_temp else f"{entry.name} {entry.version}"
    click.echo(f"{entry.path}: {shown}")
    if result.ignored:
        note(f"added /{entry.path}/ to .gitignore", quiet)
    note("commit it: git add ama.lock .gitignore && git commit", quiet)


@command.command("remove", examples=[
    ("Stop using the asset checked out in data/train and delete the folder:",
     "ama git remove data/train"),
    ("Stop recording it but keep the files:", "ama git remove --keep data/train")])
@click.argument("path", metavar="DIR")
@click.option("--keep", is_flag=True, help="Keep the folder; only stop recording it.")
@click.option("--force", is_flag=True, help="Delete the folder even with changes not uploaded.")
@json_option
def remove(path: str, keep: bool, force: bool, as_json: bool) -> None:
    """Stop recording the checkout DIR in ama.lock and .gitignore, and delete it (unless
    --keep; a folder with changes that are not uploaded needs --force)."""
    from ama.porcelain.gitsync import remove as remove_

    result = remove_(_repo(), path, keep=keep, force=force)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(f"{result.entry.path}: no longer recorded"
               + (" (folder deleted)" if result.deleted else ""))


_WORDS = {
    "in-step": "in step",
    "other-version": "holds another version",
    "modified": "modified",
    "missing": "missing",
    "temp": "never uploaded",
}


@command.command("status", examples=[
    ("See whether every checkout holds the version ama.lock names:", "ama git status"),
    ("The same for a script:", "ama git status --json | jq '.checkouts[].state'")],
    exit_codes={0: "every checkout is in step", 1: "a checkout is out of step",
                2: "a damaged ama.lock", 3: "not in a git work tree"})
@json_option
def status(as_json: bool) -> None:
    """Show each checkout ama.lock names: in step (the locked version, unchanged), holding
    another version, modified, missing, or never uploaded. Exits 1 when one is out of step.

    With --json: {"checkouts": [{"path", "name", "version", "manifest", "remote", "project",
    "temp", "state", "holds", "changes"}], "in_step"}.
    """
    from ama.porcelain.gitsync import IN_STEP, git_status

    states = git_status(_repo())
    in_step = all(s.state == IN_STEP for s in states)
    if as_json:
        emit_json({"checkouts": [s.to_json() for s in states], "in_step": in_step})
    else:
        if not states:
            click.echo("ama.lock names no assets (add one with 'ama git add NAME/VERSION')")
        for s in states:
            locked = s.entry.name if s.entry.is_temp else f"{s.entry.name} {s.entry.version}"
            line = f"{s.entry.path}: {locked}: {_WORDS[s.state]}"
            if s.state == "other-version":
                line += f" ({s.holds})"
            if s.changes:
                line += f" ({len(s.changes)} changed: {', '.join(s.changes[:3])}"
                line += " …)" if len(s.changes) > 3 else ")"
            click.echo(line)
        if not in_step:
            note("bring them in step with 'ama git sync'; record a checkout's own version "
                 "with 'ama git add DIR'")
    if not in_step:
        sys.exit(1)


@command.command("sync", examples=[
    ("Bring every checkout to the locked versions after a pull:", "ama git sync"),
    ("Overwrite changes that are not uploaded:", "ama git sync --force")])
@click.option("--force", is_flag=True,
              help="Overwrite changes in checkouts that are not uploaded.")
@quiet_option
@json_option
def sync(force: bool, quiet: bool, as_json: bool) -> None:
    """Bring every checkout to the version ama.lock names: clone the missing ones, switch
    those holding another version (fetching metadata and only the files that differ).
    Checkouts with changes that are not uploaded are left alone unless --force."""
    from ama.porcelain.gitsync import sync as sync_

    with progress("Syncing", not (quiet or as_json)) as bar:
        result = sync_(_repo(), force=force, progress=bar)
    if as_json:
        emit_json(result.to_json())
    else:
        for o in result.outcomes:
            if o.action == "failed" and o.error is not None:
                click.echo(f"ama: error: {o.entry.path}: {o.error.message}", err=True)
                if o.error.hint:
                    click.echo(f"hint: {o.error.hint}", err=True)
            elif o.action == "skipped":
                click.echo(f"ama: error: {o.entry.path}: not switched, {o.detail}", err=True)
                click.echo("hint: upload or discard them, or pass --force", err=True)
            elif not quiet:
                click.echo(f"{o.entry.path}: {o.action}" + (f" {o.detail}" if o.detail else ""))
    if result.failed:
        sys.exit(1)
