"""ama hash-object: compute the ids of files (as b3sum does) and optionally store them."""

from __future__ import annotations

import os
import sys

import click

from ama.cli.command import Env, command, read_records, write_records
from ama.plumbing.errors import BadInput, NotFound


@command(
    "hash-object",
    examples=[
        ("Print the id of a file (the same as b3sum prints):", "ama hash-object weights.bin"),
        ("Store every file of a folder in the asset store:",
         "find data -type f | ama hash-object -w --stdin-paths"),
        ("Store bytes from a pipe:", "curl -s $URL | ama hash-object -w --stdin"),
    ],
    see_also=["ama-cat-object(1)", "ama-update-index(1)", "b3sum(1)", "ama-format(5)"],
)
@click.option("-w", "write", is_flag=True, help="Also store the objects in the asset store.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Hash the bytes read from stdin.")
@click.option("--stdin-paths", is_flag=True, help="Read file paths from stdin, one per line.")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
def command(write: bool, from_stdin: bool, stdin_paths: bool, files: tuple[str, ...]) -> None:
    """Print the object id of each FILE: the BLAKE3-256 of its bytes in hex.

    With -w the objects are also written to the object database of the asset store; the ids
    are printed only once every object is durable. Ids are printed one per line, in the order
    the files were given.
    """
    if from_stdin and stdin_paths:
        raise click.UsageError("--stdin and --stdin-paths cannot be used together")
    paths = list(files)
    if stdin_paths:
        paths.extend(read_records(sys.stdin))
    env = Env()
    ids: list[str] = []
    if write:
        odb = env.store.objects
        with odb.batch():
            if from_stdin:
                ids.append(odb.write(sys.stdin.buffer.read()))
            for path in paths:
                ids.append(odb.write_file(path, _size(path)))
    else:
        from ama.plumbing.hashing import hash_file, hash_stream

        if from_stdin:
            ids.append(hash_stream(sys.stdin.buffer)[0])
        for path in paths:
            ids.append(hash_file(path, _size(path)))
    write_records(ids)


def _size(path: str) -> int:
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{path} is not a regular file")
    return st.st_size
