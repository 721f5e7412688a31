"""ama init: make the current directory an asset directory."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._metadata import complete_class
from ama.cli.commands._porcelain import emit_json, json_option


@command(
    "init",
    examples=[
        ("Start a new model asset in a new, empty folder (mkdir m && cd m first):",
         "ama init ml-models"),
    ],
    see_also=["ama-class(1)", "ama-add(1)", "ama-status(1)", "ama-format(5)"],
    exit_codes={0: "success", 1: "the directory is an asset directory already",
                2: "the directory is inside an asset directory or contains one",
                3: "the class is not known on this machine"},
)
@click.argument("class_name", metavar="CLASS", shell_complete=complete_class)
@json_option
def command(class_name: str, as_json: bool) -> None:
    """Make the current directory an asset directory holding a new asset of CLASS.

    Creates .ama/ with HEAD naming a temporary asset, temp_<random>, whose version is
    temp_ until the first upload gives it a name (CLASS/N) and version 0.0.0. The class
    must be known on this machine (see 'ama class list'). Asset directories cannot nest,
    and the directory is registered in the asset store so 'ama store gc' keeps what it
    needs.
    """
    import os

    from ama.porcelain.init import init

    head = init(os.getcwd(), class_name)
    if as_json:
        emit_json(head.to_json())
    else:
        click.echo(f"Initialised {head.name} of class {head.class_name} in {os.getcwd()}")
