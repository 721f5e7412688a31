"""The ``ama`` (and ``git-ama``) entry point and its lazy command table.

One table drives dispatch, ``ama --help`` and the man pages. A command's module is imported
only when that command runs, so ``ama --help`` and the git hooks start fast.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from ama import __version__
from ama.cli.command import shown
from ama.plumbing.errors import AmaError, environment_error

# name -> (module under ama.cli.commands, one-line summary, group)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "hash-object": ("hash_object", "Compute object ids of files, optionally storing them",
                    "plumbing"),
    "cat-object": ("cat_object", "Show an object's type, size, content or existence", "plumbing"),
    "mktree": ("mktree", "Build a tree object from ls-tree lines on stdin", "plumbing"),
    "ls-tree": ("ls_tree", "List the entries of a tree", "plumbing"),
    "update-index": ("update_index", "Stage files in the index, remove them, or refresh it",
                     "plumbing"),
    "ls-files": ("ls_files", "List staged, modified, deleted or untracked files", "plumbing"),
    "write-tree": ("write_tree", "Write the index as tree objects and print the root id",
                   "plumbing"),
    "read-tree": ("read_tree", "Replace the index with the contents of a tree", "plumbing"),
    "checkout-index": ("checkout_index", "Write staged files from the store into the work tree",
                       "plumbing"),
    "commit-manifest": ("commit_manifest", "Create a manifest object for a tree", "plumbing"),
    "update-ref": ("update_ref", "Move or delete a ref by compare-and-swap", "plumbing"),
    "show-ref": ("show_ref", "List refs and the ids they hold", "plumbing"),
    "rev-parse": ("rev_parse", "Turn ids, prefixes and ref names into full ids", "plumbing"),
    "rev-list": ("rev_list", "List manifests, and their objects, reachable from others",
                 "plumbing"),
    "fsck": ("fsck", "Verify every object in the store", "plumbing"),
    "count-objects": ("count_objects", "Count the objects in the store and their size",
                      "plumbing"),
    "init": ("init", "Make the current directory an asset directory of a class", "porcelain"),
    "class": ("class_", "Create, list and show asset classes", "porcelain"),
    "config": ("config", "Read and change settings", "porcelain"),
    "add": ("add", "Stage new and changed files", "porcelain"),
    "update": ("update", "Re-stage staged files that changed", "porcelain"),
    "remove": ("remove", "Unstage files and delete them from the asset", "porcelain"),
    "discard": ("discard", "Throw away changes, restoring files from the store", "porcelain"),
    "status": ("status", "Show staged, changed, deleted and untracked files", "porcelain"),
    "diff": ("diff", "Show files that differ between versions or the work tree", "porcelain"),
    "store": ("store", "Inspect, move, verify and clean the asset store", "porcelain"),
    "auth": ("auth", "Sign up, log in to and out of a remote", "porcelain"),
    "list": ("list", "List the assets of a class", "porcelain"),
    "info": ("info", "Show an asset or a version, or its asset hash", "porcelain"),
    "find": ("find", "Find versions by hash, alias or file, or tell a version's size",
             "porcelain"),
    "alias": ("alias", "Add, list and remove an asset's aliases", "porcelain"),
    "asset": ("asset", "Set an asset's title, description, tags and status; delete it",
              "porcelain"),
    "admin": ("admin", "Manage a remote's users, roles and tokens; read its audit log",
              "porcelain"),
    "inputs": ("inputs", "Stage the inputs of the next upload; show lineage", "porcelain"),
    "dashboard": ("dashboard", "Serve the web dashboard of a folder remote on 127.0.0.1",
                  "porcelain"),
    "completion": ("completion", "Print the shell completion script for bash or zsh",
                   "porcelain"),
    "remote": ("remote", "Add, list, remove and choose remotes", "porcelain"),
    "project": ("project", "List, show, activate and create projects", "porcelain"),
    "upload": ("upload", "Upload the staged files as the asset's next version", "porcelain"),
    "clone": ("clone", "Clone an asset version from the remote into a new directory",
              "porcelain"),
    "fetch": ("fetch", "Fetch versions and history from the remote, without file bytes",
              "porcelain"),
    "download": ("download", "Fetch and place the file bytes of the current version",
                 "porcelain"),
    "versions": ("versions", "List the versions of an asset", "porcelain"),
    "switch": ("switch", "Make the asset directory hold another version", "porcelain"),
    "pull": ("pull", "Switch the asset directory to the latest version on the remote",
             "porcelain"),
    "history": ("history", "Show what changed in each version", "porcelain"),
    "report": ("report", "Write a version as a self-contained HTML page", "porcelain"),
    "cp": ("cp", "Copy files between asset versions and local paths, by object id",
           "porcelain"),
    "union": ("union", "Stage another version's files beside this directory's", "porcelain"),
    "git": ("git", "Record the assets a git repository uses in ama.lock; keep them in step",
            "git"),
    "hooks": ("hooks", "Install or remove the git hooks that keep assets in step", "git"),
}


class AmaGroup(click.Group):
    """A group that imports each command's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, COMMANDS, n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(repr(f'ama {c}') for c in close)}?" if close
                    else "run 'ama --help' for the list of commands")
            raise UsageError(f"no such command {name!r}", hint, ctx=ctx)
        return super().resolve_command(ctx, args)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise  # bare `ama`: click prints the help, as it should
        except click.ClickException as e:
            # ama's own options are parsed before invoke: report them the same way.
            report_click(e)
            sys.exit(e.exit_code)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"ama.cli.commands.{entry[0]}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            _module, summary, group = COMMANDS[name]
            groups.setdefault(group, []).append((name, summary))
        for group, rows in groups.items():
            with formatter.section(f"{group.capitalize()} commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AmaError as e:
            report(e)
            ctx.exit(e.exit_code)
        except NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            report_click(e)
            ctx.exit(e.exit_code)
        except BrokenPipeError:
            # The reader went away (`ama ls-files | head`): stop quietly, as git does.
            sys.stderr.close()
            ctx.exit(141)
        except OSError as e:
            from ama.plumbing.store import home_dir

            failed = environment_error(e, str(home_dir()))
            if failed is None:
                raise  # not the machine's state: a bug, shown with its traceback
            report(failed)
            ctx.exit(failed.exit_code)
        except KeyboardInterrupt:
            _said.set()
            click.echo(INTERRUPTED, err=True, nl=False)
            ctx.exit(130)


def report(error: AmaError) -> None:
    """Print an error the way every ama command does: with control characters shown
    escaped, since a message may carry a remote's words (an escape sequence in them would
    drive the user's terminal)."""
    click.echo(f"ama: error: {shown(error.message)}", err=True)
    if error.hint:
        click.echo(f"hint: {shown(error.hint)}", err=True)



class UsageError(click.UsageError):
    """A usage error that names the fix itself, instead of the generic ``--help`` hint."""

    def __init__(self, message: str, hint: str, ctx: click.Context | None = None) -> None:
        super().__init__(message, ctx=ctx)
        self.hint = hint


def report_click(error: click.ClickException) -> None:
    """Print click's own errors (usage, bad values, missing files) in ama's shape: one
    ``ama: error:`` line and a ``hint:`` naming what to run next."""
    message = error.format_message()
    if message[:2].istitle():  # click's "Missing option", not a metavar like "VERSION"
        message = message[:1].lower() + message[1:]
    hint = getattr(error, "hint", None)
    if hint is None and isinstance(error, click.UsageError) and error.ctx is not None:
        hint = f"run '{error.ctx.command_path} --help' for its usage"
    report(AmaError(message.rstrip("."), hint or ""))
class _Warnings(logging.Handler):
    """Print what the library warns about (a stale lock it broke) as ``ama: warning: …``."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"ama: warning: {record.getMessage()}", err=True)


@click.group(cls=AmaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ama")
@click.option("--break-lock", is_flag=True,
              help="Take every lock the command needs even when another process holds it "
                   "(one that is stuck, or one on another host sharing the folder). A lock "
                   "left by a process of this host that is no longer running is always "
                   "taken, with a warning.")
def cli(break_lock: bool) -> None:
    """ama: a version-controlled, immutable store for datasets, models and configurations.

    Plumbing commands read and write the object database of the asset store
    ($AMA_HOME, default ~/.ama) and the index of an asset directory; their output is a
    stable interface for scripts. See ama-format(5) for the formats.
    """
    from ama.plumbing.lock import break_held_locks, store_in_use

    logger = logging.getLogger("ama")
    if not any(isinstance(h, _Warnings) for h in logger.handlers):
        logger.addHandler(_Warnings(logging.WARNING))
    break_held_locks(break_lock)
    ctx = click.get_current_context()
    if ctx.invoked_subcommand not in (None, "store"):
        # For as long as the command runs, the objects it writes or finds stored and is
        # about to name in an index or ref are safe from 'ama store gc'.
        from ama.plumbing.store import home_dir

        ctx.with_resource(store_in_use(home_dir() / "objects", create=False))


INTERRUPTED = ("ama: error: interrupted\n"
               "hint: run the command again: what it finished is kept, and it goes on from "
               "there\n")
# A first Ctrl-C unwinds the command (its finally blocks, its locks, its progress bar). A
# thread still moving bytes (a part of 64 MiB to storage far away) would keep the process
# alive until it is done, so after this many seconds, or at a second Ctrl-C, the process
# ends at once, as a kill ends it: every command leaves the store, the index and the work
# tree whole when killed at any point, and a transfer goes on from what it finished.
INTERRUPT_GRACE = 3.0
_interrupted = threading.Event()
_said = threading.Event()  # the command unwound and said it was interrupted


def _stop_now() -> None:
    """End the process at once, saying so on stderr (the cursor shown again on a terminal,
    where a progress bar hid it)."""
    try:
        restore = "\r\x1b[2K\x1b[?25h" if sys.stderr.isatty() else ""
        os.write(2, f"{restore}{'' if _said.is_set() else INTERRUPTED}".encode())
    finally:
        os._exit(130)


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    if _interrupted.is_set():
        _stop_now()
    _interrupted.set()
    timer = threading.Timer(INTERRUPT_GRACE, _stop_now)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> Any:
    """Run ``ama``; this is the console script for ``ama`` and ``git-ama``."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_interrupt)
    if argv is None and sys.argv and sys.argv[0].rpartition("/")[2] == "git-ama":
        from ama.cli.commands.git import git_ama_args

        return cli.main(args=git_ama_args(sys.argv[1:]), prog_name="git ama")
    return cli.main(args=argv, prog_name="ama")
