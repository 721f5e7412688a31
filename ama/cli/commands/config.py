"""ama config: read and change the settings of the asset store."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._porcelain import emit_json, json_option


@group(
    "config",
    examples=[
        ("Link files into asset directories as hard links:",
         "ama config set link.strategy hardlink"),
        ("Set the author recorded in versions:", "ama config set user.name 'Ada Lovelace'"),
        ("Show every setting with where its value comes from:", "ama config list"),
    ],
    see_also=["ama-store(1)"],
    exit_codes={0: "success", 2: "an unknown setting or an invalid value",
                3: "get of a setting with no value"},
)
def command() -> None:
    """Read and change settings, kept in $AMA_HOME/config.

    The file is INI text: 'link.strategy' is the line 'strategy = …' under '[link]'.
    AMA_REMOTE, AMA_PROJECT, AMA_AUTHOR_NAME and AMA_AUTHOR_EMAIL override remote.default,
    project.active, user.name and user.email for one command; AMA_MULTIPART_THRESHOLD and
    AMA_PACK_BYTES override transfer.multipart_threshold and transfer.pack_bytes.

    \b
    Settings:
      link.strategy         auto (reflink, else copy), reflink, hardlink, symlink or copy
      remote.default        the remote used when none is named (local: embedded, file://)
      project.active        the project commands work in (default: default)
      transfer.timeout      seconds to wait for a remote (default: 60)
      transfer.parallelism  objects transferred at once (default: 8)
      transfer.multipart_threshold
                            bytes from which an object is uploaded in parts and
                            downloaded in ranges, resumably (default: 67108864)
      transfer.pack_bytes   size of the packs small objects are uploaded in
                            (default: 67108864)
      user.name, user.email the author recorded in versions
      server.ip             the server's address used with ASSET_SERVER_SKIP_DNS=true
    """


@command.command("get", examples=[
    ("Show the link strategy in effect:",
     "ama config get link.strategy"),
])
@click.argument("name")
def get(name: str) -> None:
    """Print the value in effect for the setting NAME."""
    from ama.plumbing.errors import NotFound
    from ama.porcelain.config import Config

    value = Config.open().get(name)
    if value == "":
        raise NotFound(f"{name} is not set", f"set it with 'ama config set {name} VALUE'")
    click.echo(value)


@command.command("set", examples=[
    ("Link files from the store as hard links:",
     "ama config set link.strategy hardlink"),
])
@click.argument("name")
@click.argument("value")
def set_(name: str, value: str) -> None:
    """Store VALUE for the setting NAME (checked first)."""
    from ama.porcelain.config import Config

    Config.open().set(name, value)


@command.command("unset", examples=[
    ("Go back to the default link strategy:",
     "ama config unset link.strategy"),
])
@click.argument("name")
def unset(name: str) -> None:
    """Remove the setting NAME from the file, so its default applies."""
    from ama.porcelain.config import Config

    Config.open().unset(name)


@command.command("list", examples=[
    ("Show every setting and where it comes from:",
     "ama config list"),
])
@json_option
def list_(as_json: bool) -> None:
    """Print every setting as NAME=VALUE, with where the value comes from."""
    from ama.porcelain.config import Config

    items = Config.open().items()
    if as_json:
        emit_json({name: {"value": value, "source": source} for name, value, source in items})
        return
    for name, value, source in items:
        click.echo(f"{name}={value}\t({source})")
