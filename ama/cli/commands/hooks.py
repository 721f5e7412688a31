"""ama hooks: install ama's git hooks in a repository, remove them, and (for the hook scripts)
run their checks."""

from __future__ import annotations

import sys
from typing import Any

import click

from ama.cli.command import group
from ama.cli.commands._porcelain import (
    emit_json,
    json_array_option,
    note,
    quiet_option,
)


def _repo():  # type: ignore[no-untyped-def]
    from ama.plumbing.gitrepo import GitRepo

    return GitRepo.discover()


@group(
    "hooks",
    examples=[
        ("Have git keep this repository's asset checkouts in step:", "ama hooks install"),
        ("Set aside a hook ama cannot chain (uninstall puts it back):",
         "ama hooks install --force"),
        ("Remove ama's hooks and restore the ones they chained:", "ama hooks uninstall"),
    ],
    see_also=["ama-git(1)", "githooks(5)"],
    exit_codes={0: "success", 1: "an existing hook cannot be chained (without --force), or a "
                "hook's check failed", 3: "not in a git work tree"},
)
def command() -> None:
    """Install or remove ama's git hooks.

    pre-commit stops a commit while an asset checkout is modified or out of step with
    ama.lock, or while ama.lock names a version its remote lacks; pre-push stops a push
    whose commits name a version missing from its remote or an asset never uploaded;
    post-checkout and post-merge bring the checkouts to the versions ama.lock names.
    Hooks go where git runs them (core.hooksPath when set). A hook already there is kept
    and run first, its exit code kept; uninstall puts it back. When nothing asset-related
    changed the hooks decide in the shell, without starting ama.
    """


@command.command("install", examples=[
    ("Install the hooks (in core.hooksPath when it is set):", "ama hooks install"),
    ("Set aside a hook that cannot be chained:", "ama hooks install --force")])
@click.option("--force", is_flag=True,
              help="Set aside existing hooks that cannot be chained (not executable, not "
                   "a file) instead of refusing.")
@quiet_option
@json_array_option
def install(force: bool, quiet: bool, as_json: bool) -> None:
    """Install pre-commit, pre-push, post-checkout and post-merge."""
    from ama.porcelain.hooks import install as install_

    changes = install_(_repo(), force=force)
    if _report(changes, quiet, as_json):
        return
    note("the previous hooks run first; 'ama hooks uninstall' restores them", quiet
         or not any(c.action in ("chained", "replaced") for c in changes))


@command.command("uninstall", examples=[
    ("Remove ama's hooks, restoring the previous ones:", "ama hooks uninstall")])
@quiet_option
@json_array_option
def uninstall(quiet: bool, as_json: bool) -> None:
    """Remove ama's hooks and put back the hooks they chained or set aside."""
    from ama.porcelain.hooks import uninstall as uninstall_

    changes = uninstall_(_repo())
    _report(changes, quiet, as_json)


def _report(changes: list[Any], quiet: bool, as_json: bool) -> bool:
    """Print what install or uninstall did to each hook; return whether it was JSON."""
    if as_json:
        emit_json([c.to_json() for c in changes])
        return True
    if not quiet:
        for c in changes:
            click.echo(f"{c.name}: {c.action} ({c.path})")
    return False


@command.command("run", hidden=True, examples=[
    ("What the installed pre-commit hook runs when an asset changed:",
     "ama hooks run pre-commit")],
                 context_settings={"ignore_unknown_options": True})
@click.argument("hook")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(hook: str, args: tuple[str, ...]) -> None:
    """Run the check of the git hook HOOK with git's ARGS (the hook scripts call this)."""
    from ama.porcelain import gitsync

    repo = _repo()
    if hook == "pre-commit":
        report = gitsync.check_commit(repo)
    elif hook == "pre-push":
        remote = args[0] if args else ""
        report = gitsync.check_push(repo, remote, sys.stdin.read())
    elif hook in ("post-checkout", "post-merge"):
        _result, report = gitsync.after_checkout(repo)
    else:
        raise click.UsageError(f"unknown hook {hook!r}")
    for line in report.notes:
        click.echo(f"ama {hook}: {line}", err=True)
    for line in report.problems:
        click.echo(f"ama {hook}: error: {line}", err=True)
    if not report.ok:
        if hook in ("pre-commit", "pre-push"):
            click.echo(f"ama {hook}: stopped ({len(report.problems)} problem(s) above)",
                       err=True)
        sys.exit(1)
