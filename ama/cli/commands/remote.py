"""ama remote: name the remotes ama talks to, and pick the default."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._porcelain import emit_json, json_array_option, json_option


@group(
    "remote",
    examples=[
        ("Add a team server and make it the default:",
         "ama remote add team https://ama.example.org && ama remote default team"),
        ("Use a shared folder as a remote:", "ama remote add shared file:///mnt/ama"),
        ("List remotes (* marks the default):", "ama remote list"),
    ],
    see_also=["ama-auth(1)", "ama-project(1)"],
    exit_codes={0: "success", 1: "the name is taken", 2: "a bad name or URL",
                3: "no such remote"},
)
def command() -> None:
    """Add, list, remove and choose remotes.

    A remote is an ama server (https://HOST[:PORT]) or a folder (file:///PATH). The
    remote 'local', a folder under $AMA_HOME, is built in and is the default until
    another is chosen, so ama works with no server and no login.
    """


@command.command("add", examples=[
    ("Add a team server:", "ama remote add team https://ama.example.org")])
@click.argument("name")
@click.argument("url")
@json_option
def add(name: str, url: str, as_json: bool) -> None:
    """Add the remote NAME at URL. The first remote added besides 'local', while no
    default was chosen, becomes the default."""
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import LOCAL_REMOTE
    from ama.porcelain.remotes import add as add_remote

    info = add_remote(Config.open(), name, url)
    if as_json:
        emit_json(info.to_json())
    else:
        click.echo(f"Added remote {info.name} at {info.url}")
        if info.default:
            click.echo(f"{info.name} is now the default remote ('ama remote default "
                       f"{LOCAL_REMOTE}' goes back to the built-in one)", err=True)


@command.command("list", examples=[
    ("List remotes:", "ama remote list --json")])
@json_array_option
def list_(as_json: bool) -> None:
    """List remotes with their URLs; * marks the default."""
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import list_remotes

    remotes = list_remotes(Config.open())
    if as_json:
        emit_json([r.to_json() for r in remotes])
        return
    for r in remotes:
        click.echo(f"{'*' if r.default else ' '} {r.name}\t{r.url}")


@command.command("remove", examples=[
    ("Forget a remote:", "ama remote remove team")])
@click.argument("name")
def remove(name: str) -> None:
    """Forget the remote NAME ('local' becomes the default again if NAME was)."""
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import remove as remove_remote

    info = remove_remote(Config.open(), name)
    click.echo(f"Removed remote {info.name}")


@command.command("default", examples=[
    ("Use the team server by default:", "ama remote default team")])
@click.argument("name")
def default(name: str) -> None:
    """Make NAME the remote used when none is named."""
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import set_default

    info = set_default(Config.open(), name)
    click.echo(f"Default remote: {info.name} ({info.url})")
