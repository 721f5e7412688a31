"""ama add: stage new and changed files."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import (
    emit_json,
    json_option,
    note,
    open_asset,
    progress,
    quiet_option,
)


@command(
    "add",
    examples=[
        ("Stage everything in the asset directory:", "ama add ."),
        ("Stage one folder and one file:", "ama add data/ config.yaml"),
        ("Stage an object of a bucket, as raw/train.csv:",
         "ama add s3://my-bucket/exports/train.csv --dest raw"),
        ("Stage every object under a prefix, and a file from the web:",
         "ama add gs://my-bucket/images/ https://example.org/labels.json"),
        ("Stage a large object as a proxy, its bytes left in the bucket:",
         "ama add --proxy s3://my-bucket/weights/model.bin --dest weights"),
    ],
    see_also=["ama-status(1)", "ama-update(1)", "ama-remove(1)", "ama-discard(1)"],
    exit_codes={0: "success", 2: "bad usage, an excluded file, a special file, a bad name, "
                                 "a symbolic link leaving the asset, or a file in the way "
                                 "of a download",
                3: "a path that does not exist, a missing bucket, object or web page, or "
                   "not an asset directory",
                4: "a bucket or web server refused access",
                5: "a source that cannot be reached"},
)
@click.argument("paths", nargs=-1, required=True, metavar="PATH…")
@click.option("--dest", metavar="DIR",
              help="Where files read from URLs land (default: the current folder).")
@click.option("--follow-symlinks", is_flag=True,
              help="Stage the file a symbolic link leaving the asset points at, as a file.")
@click.option("--skip-symlinks", is_flag=True, help="Leave every symbolic link out.")
@click.option("--proxy", is_flag=True,
              help="Stage the files read from URLs as proxies: uploads send their "
                   "descriptors, never their bytes.")
@quiet_option
@json_option
def command(paths: tuple[str, ...], dest: str | None, follow_symlinks: bool,
            skip_symlinks: bool, proxy: bool, quiet: bool, as_json: bool) -> None:
    """Stage the files below each PATH ('.' for the whole directory): new files, files
    whose content changed, and the removal of staged files that were deleted.

    Each file's bytes are stored in the asset store and recorded in the index with its stat,
    so only files that change are read again. Files matched by .amaignore are skipped.
    FIFOs, sockets and devices are refused, naming each: nothing is staged until every
    path is fine.

    A symbolic link whose target stays inside the asset (relative, normalised, not
    through .ama) is staged as a link, dangling or to a folder alike, and checked out as
    one. A link leaving the asset is refused, naming each, unless --follow-symlinks
    stages the file it points at instead, or --skip-symlinks leaves all links out.

    With the hardlink link strategy (ama config set link.strategy hardlink) a plain file
    that has no other hard link is not copied: the file itself becomes its store object by
    a hard link and turns read-only (0444). It is then part of the store, shared with every
    hardlink checkout of it: edit it by replacing it (as most editors save), never by
    making it writable and writing into it. ama status reports such a file as modified
    if its bytes change anyway, and ama store verify finds the damaged object.

    A PATH may also be a URL: s3://BUCKET/KEY, gs://BUCKET/KEY, https://HOST/FILE (or
    http://). The object is streamed into the store, hashed on the way (never held whole
    in memory nor copied elsewhere first), placed in the asset directory under its base
    name and staged. s3://BUCKET/PREFIX/ and gs://BUCKET/PREFIX/ (a trailing /) add every
    object under the prefix, at its path below it. --dest DIR puts them in DIR instead of
    the current folder. Credentials come from the standard chains: for S3 the environment
    (AWS_ACCESS_KEY_ID, AWS_PROFILE, …) and its files; for GCS the application default
    credentials. AWS_ENDPOINT_URL and STORAGE_EMULATOR_HOST point at another endpoint.
    Every URL is checked before any byte is read; a file already at a landing place is
    replaced only if it is staged and unchanged.

    With --proxy each file read from a URL is a proxy: its bytes are read once (hashed,
    and kept in the asset store as a cache) but never uploaded; the version records a small
    descriptor instead (the URL, the size, the BLAKE3 id and the source's ETag or GCS
    generation; see ama-format(5), PROXY FILES). A clone or download fetches the bytes
    from the source with the same credentials and verifies them; a source that changed
    since is an error naming the file and the URL.
    """
    from ama.plumbing.errors import BadInput
    from ama.porcelain.add import Staged, add
    from ama.porcelain.sources import add_sources, is_source

    if follow_symlinks and skip_symlinks:
        raise BadInput("--follow-symlinks and --skip-symlinks cannot be given together")
    links = "follow" if follow_symlinks else "skip" if skip_symlinks else "record"
    urls = [p for p in paths if is_source(p)]
    local = [p for p in paths if not is_source(p)]
    if proxy and not urls:
        raise BadInput("--proxy stages files read from URLs; no URL was given",
                       "name an s3://, gs:// or https:// URL")
    if dest is not None and not urls:
        raise BadInput("--dest places files read from URLs; no URL was given",
                       "move local files where they belong, then 'ama add' them")
    asset = open_asset()
    result = Staged()
    if local:
        with progress("Staging", not (quiet or as_json)) as bar:
            result = add(asset, local, progress=bar, links=links)
    if urls:
        with progress("Downloading", not (quiet or as_json)) as bar:
            fetched = add_sources(asset, urls, dest, progress=bar, proxy=proxy)
        result.new += fetched.new
        result.modified += fetched.modified
        result.bytes += fetched.bytes
        result.sort()
    if as_json:
        emit_json(result.to_json())
        return
    if result.skipped:
        note(f"{len(result.skipped)} symbolic link(s) left out (--skip-symlinks)", quiet)
    restored = (f", {len(result.restored)} stored again (their objects had gone from the "
                "store)" if result.restored else "")
    note(f"{len(result.new)} new, {len(result.modified)} modified, "
         f"{len(result.removed)} removed{restored}", quiet)
