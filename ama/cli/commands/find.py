"""ama find: versions by asset hash, alias or file content, and a version's size."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ama.cli.command import command
from ama.cli.commands._metadata import (
    METADATA_EXIT_CODES,
    complete_class,
    remote_option,
)
from ama.cli.commands._porcelain import emit_json
from ama.plumbing.units import human_size

if TYPE_CHECKING:
    from ama.plumbing import wire


@command(
    "find",
    examples=[
        ("Which versions have exactly these files (the asset hash of 'ama info --hash')?",
         "ama find --class ml-models --hash 3f9a…"),
        ("Which asset does an alias name, and what is its latest version?",
         "ama find --alias prod-resnet"),
        ("How big is a version before cloning it?", "ama find --size ml-models/1/0.0.1"),
        ("Which versions contain this exact file?", "ama find --file weights.bin"),
    ],
    see_also=["ama-info(1)", "ama-list(1)", "ama-clone(1)"],
    exit_codes={**METADATA_EXIT_CODES,
                3: "nothing matched; or no such asset, version, class or file"},
)
@click.option("--hash", "hash_", metavar="HASH",
              help="Versions whose asset hash (root tree id) is HASH.")
@click.option("--alias", metavar="ALIAS", help="The asset each class names ALIAS, and its "
                                               "latest version.")
@click.option("--size", "size_of", metavar="NAME[/VERSION]",
              help="Bytes and files of a version (default: the latest) without cloning it.")
@click.option("--file", "file_", metavar="PATH", type=click.Path(dir_okay=True),
              help="Versions containing the exact content of the file PATH.")
@click.option("--class", "cls", metavar="CLASS", shell_complete=complete_class,
              help="Look only in this class.")
@remote_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the versions found as one JSON array on stdout (with --size, "
                   "one JSON object).")
def command(hash_: str | None, alias: str | None, size_of: str | None, file_: str | None,
            cls: str | None, remote: str | None, as_json: bool) -> None:
    """Find versions in the active project of the remote: by asset hash (--hash), by
    alias (--alias), by the content of a file (--file: the file is hashed here and only
    its id is sent), or tell the size of a version before cloning it (--size). Give
    exactly one of them; --class narrows the search to one class.

    Exits 3 when nothing matched. With --json: a list of versions {"name", "version",
    "manifest", "tree", "created", "author", …} (with "paths" for --file), or for --size
    {"name", "version", "manifest", "bytes", "files"}.
    """
    from ama.plumbing.errors import BadInput, NotFound
    from ama.porcelain import find
    from ama.porcelain.config import Config
    from ama.porcelain.info import connect, parse_name

    given = [flag for flag, value in (("--hash", hash_), ("--alias", alias), ("--size", size_of),
                                      ("--file", file_)) if value is not None]
    if len(given) != 1:
        raise BadInput("give exactly one of --hash, --alias, --size or --file"
                       + (f" (got {', '.join(given)})" if given else ""),
                       "see 'ama find --help' for examples")
    if size_of is not None:
        if cls is not None:
            raise BadInput("--size takes the class from its NAME; drop --class")
        ref = parse_name(size_of)
        size = find.find_size(connect(Config.open(), remote), ref)
        if as_json:
            emit_json(size)
        else:
            click.echo(f"{size['name']}/{size['version']}\t{size['bytes']}\t{size['files']}"
                       f"\t({human_size(size['bytes'])} in {size['files']} files)")
        return
    where = connect(Config.open(), remote)
    found: list[wire.FoundVersion]
    what: str
    if hash_ is not None:
        found, what = find.find_hash(where, hash_, cls), f"asset hash {hash_}"
    elif alias is not None:
        found, what = find.find_alias(where, alias, cls), f"alias {alias}"
    else:
        assert file_ is not None
        matches = find.find_file(where, file_, cls)
        found, what = matches.versions, f"the content of {file_} (blob {matches.blob})"
    if as_json:
        emit_json(found)
    else:
        for v in found:
            line = f"{v['name']}/{v['version']}\t{v['tree']}"
            if "paths" in v:
                line += "\t" + ", ".join(v["paths"])
            click.echo(line)
    if not found:
        scope = f" in class {cls}" if cls else ""
        raise NotFound(f"no version in project {where.project}{scope} has {what}")
