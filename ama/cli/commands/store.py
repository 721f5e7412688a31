"""ama store: inspect, move, check and clean the machine-wide asset store."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._porcelain import emit_json, json_option, note, progress, quiet_option


def _open():  # type: ignore[no-untyped-def]
    from ama.plumbing.store import Store

    return Store.open()


@group(
    "store",
    examples=[
        ("Where the store is, how big, and how files are linked:", "ama store info"),
        ("Re-hash a tenth of the stored objects:", "ama store verify --sample 10"),
        ("See what gc would delete, then delete it:", "ama store gc --dry-run && ama store gc"),
        ("Move the objects to a bigger disk:", "ama store set /mnt/big/ama-objects"),
    ],
    see_also=["ama-config(1)", "ama-fsck(1)", "ama-count-objects(1)"],
    exit_codes={0: "success", 1: "verify found corrupt objects (that --repair could not "
                "replace) or proxy files whose source changed, or gc could not read an "
                "asset directory, or other ama commands used the store for longer than "
                "--wait", 2: "bad usage or input"},
)
def command() -> None:
    """Inspect and maintain the asset store ($AMA_HOME, default ~/.ama): every object
    this machine has seen, cached remote metadata and the registry of asset directories.
    """


@command.command("info", examples=[
    ("Show where the store is and which link strategy is in effect:",
     "ama store info"),
])
@json_option
def info(as_json: bool) -> None:
    """Show the store's path, object count and size, and the link strategy in effect."""
    from ama.porcelain.config import Config
    from ama.porcelain.store import info as store_info

    result = store_info(_open(), Config.open())
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(f"path: {result.path}")
    click.echo(f"objects path: {result.objects_path}")
    click.echo(f"objects: {result.objects}")
    click.echo(f"size: {result.bytes} bytes")
    click.echo(f"link strategy: {result.link_effective}"
               + (f" (configured: {result.link_configured})"
                  if result.link_configured != result.link_effective else ""))
    click.echo(f"asset directories: {result.asset_dirs}"
               + (f" ({result.missing_asset_dirs} gone: ama store prune)"
                  if result.missing_asset_dirs else ""))


@command.command("set", examples=[
    ("Move the asset store to a bigger disk:",
     "ama store set /data/ama-store"),
])
@click.argument("path")
def set_(path: str) -> None:
    """Move the store's objects to PATH (new or empty) and keep using them there.

    $AMA_HOME/objects becomes a symbolic link to PATH; settings stay in $AMA_HOME."""
    from ama.porcelain.store import set_path

    click.echo(set_path(_open(), path))


@command.command("verify", examples=[
    ("Re-hash a tenth of the stored objects:",
     "ama store verify --sample 10"),
    ("Re-hash every object and fetch good copies of the corrupt ones:",
     "ama store verify --repair"),
    ("Ask the source of every proxy file of this asset whether it changed:",
     "ama store verify --proxies"),
])
@click.option("--sample", type=float, default=100.0, metavar="PCT",
              help="Re-hash a random PCT percent of the objects (default: all).")
@click.option("--repair", is_flag=True,
              help="Replace each corrupt object with a copy from a remote, re-hashed first: "
                   "the remotes of the asset directories on this machine, then the default "
                   "one.")
@click.option("--proxies", is_flag=True,
              help="Instead, ask the source of every proxy file of the version in this "
                   "asset directory for its size and ETag or generation.")
@click.option("--full", is_flag=True,
              help="With --proxies, also read and hash each proxy's bytes at its source.")
@quiet_option
@json_option
def verify(sample: float, repair: bool, proxies: bool, full: bool, quiet: bool,
           as_json: bool) -> None:
    """Re-hash stored objects and report every one whose bytes no longer match its id
    ('corrupt<TAB>id<TAB>path: problem'), and with --repair each one replaced by a good
    copy ('repaired<TAB>id').

    With --proxies, check instead that the source of each proxy file of the version this
    asset directory holds (ama add --proxy) still holds its bytes, and report every one
    that changed ('changed<TAB>path<TAB>url: problem'); --full re-hashes the bytes at the
    source too. A source that refuses the credentials is an error naming the file."""
    from ama.plumbing.errors import AmaError, BadInput
    from ama.porcelain.store import verify as store_verify

    if full and not proxies:
        raise BadInput("--full re-hashes proxies at their sources: give --proxies too")
    if proxies:
        if repair:
            raise BadInput("--repair replaces corrupt store objects; it does nothing with "
                           "--proxies")
        from ama.cli.commands._porcelain import open_asset
        from ama.porcelain.sources import check_proxies

        found = check_proxies(open_asset(), full)
        if as_json:
            emit_json(found.to_json())
        else:
            for bad in found.changed:
                click.echo(f"changed\t{bad['path']}\t{bad['url']}: {bad['problem']}")
            note(f"checked {found.checked} proxy file(s), {len(found.changed)} changed", quiet)
        if found.changed:
            raise AmaError(f"{len(found.changed)} proxy file(s) changed at their source",
                           "ask the asset's author to add them again with 'ama add --proxy' "
                           "and upload a new version")
        return

    store = _open()
    with progress("Verifying", not (quiet or as_json)) as bar:
        result = store_verify(store, sample, bar)
    if repair and result.corrupt:
        from ama.porcelain.config import Config
        from ama.porcelain.store import repair as store_repair

        result.repaired = store_repair(store, [bad["id"] for bad in result.corrupt],
                                       Config.open())
    if as_json:
        emit_json(result.to_json())
    else:
        for bad in result.corrupt:
            click.echo(f"corrupt\t{bad['id']}\t{bad['path']}: {bad['problem']}")
        for oid in result.repaired:
            click.echo(f"repaired\t{oid}")
        note(f"checked {result.checked} of {result.total} objects, "
             f"{len(result.corrupt)} corrupt" +
             (f", {len(result.repaired)} repaired" if repair else ""), quiet)
    left = len(result.corrupt) - len(result.repaired)
    if left:
        raise AmaError(f"{left} corrupt object(s) in the store",
                       "run 'ama store verify --repair' to fetch good copies from the remote, "
                       "or 'ama store gc' if nothing needs them")


@command.command("gc", examples=[
    ("See what garbage collection would delete:",
     "ama store gc --dry-run"),
])
@click.option("-n", "--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--grace", type=click.IntRange(min=0), default=3600, show_default=True,
              metavar="SECONDS", help="Keep objects written in the last SECONDS.")
@click.option("--wait", type=click.FloatRange(min=0), default=60, show_default=True,
              metavar="SECONDS",
              help="Wait this long for other ama commands using the store to finish.")
@quiet_option
@json_option
def gc(dry_run: bool, grace: int, wait: float, quiet: bool, as_json: bool) -> None:
    """Delete objects that nothing needs.

    Kept: what every registered asset directory's index and HEAD version need (with its
    history), what refs and locally known versions reach, and what unfinished uploads
    need. See ama-store(1) and 'ama store prune' for directories that are gone.

    gc waits for ama commands that are running to finish (they may be writing objects
    that nothing names yet), and commands that start meanwhile wait for gc. It also
    removes what downloads killed half-way left in $AMA_HOME/incoming once a week old
    (a re-run of the download goes on from it until then)."""
    from ama.porcelain.store import gc as store_gc

    result = store_gc(_open(), dry_run=dry_run, grace=grace, wait=wait)
    if as_json:
        emit_json(result.to_json())
        return
    if dry_run:
        for oid in result.deleted:
            click.echo(oid)
    verb = "would delete" if dry_run else "deleted"
    note(f"{verb} {len(result.deleted)} object(s), {result.bytes} bytes; kept {result.kept}",
         quiet)


@command.command("prune", examples=[
    ("Forget asset directories that were deleted:",
     "ama store prune"),
])
@click.option("-n", "--dry-run", is_flag=True, help="Only list what would be dropped.")
@json_option
def prune(dry_run: bool, as_json: bool) -> None:
    """Forget asset directories that no longer exist (so gc stops protecting them)."""
    from ama.porcelain.store import prune as store_prune

    result = store_prune(_open(), dry_run)
    if as_json:
        emit_json(result.to_json())
        return
    for path in result.dropped:
        click.echo(path)


@command.command("clear", examples=[
    ("Empty the store without asking:",
     "ama store clear --yes"),
])
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-n", "--dry-run", is_flag=True, help="Only report what would be deleted.")
@json_option
def clear(yes: bool, dry_run: bool, as_json: bool) -> None:
    """Delete everything that can be fetched again: keep only what registered asset
    directories hold now (and unfinished uploads need); drop history and cached remote
    metadata. Classes are kept."""
    from ama.plumbing.errors import BadInput
    from ama.porcelain.store import clear as store_clear

    if not (yes or dry_run):
        import sys

        if not sys.stdin.isatty():
            raise BadInput("ama store clear deletes cached objects: confirm with --yes")
        click.confirm("Delete every cached object not needed by an asset directory?",
                      abort=True, err=True)
    result = store_clear(_open(), dry_run=dry_run)
    if as_json:
        emit_json(result.to_json())
        return
    verb = "would delete" if dry_run else "deleted"
    note(f"{verb} {len(result.deleted)} object(s), {result.bytes} bytes")
