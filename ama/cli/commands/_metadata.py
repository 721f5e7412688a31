"""What the metadata commands (list, info, find, alias, inputs, asset) share: the --remote
and --asset options, and which asset and remote a command is about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ama.cli.commands._porcelain import open_asset

METADATA_EXIT_CODES = {
    0: "success",
    1: "the remote refused the change",
    2: "bad usage or a bad name",
    3: "no such asset, version, alias, class or file; or not an asset directory",
    4: "not logged in, or not allowed by your role in the project",
    5: "the remote cannot be reached",
}


def remote_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--remote", metavar="NAME",
        help="The remote to ask (default: the asset directory's remote, else remote.default)."
    )(f)


def asset_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--asset", "asset_name", metavar="NAME",
        help="The asset, as CLASS/ORDINAL or CLASS/ALIAS (default: the asset of the current "
             "directory).")(f)


def target(name: str | None, remote: str | None, version: bool | None = False):  # type: ignore[no-untyped-def]
    """Return ``(Remote, AssetRef)``: ``name`` on ``remote`` (or the default remote), else
    the asset the current directory holds, on the remote its HEAD names."""
    from ama.porcelain.config import Config
    from ama.porcelain.info import connect, connect_asset, parse_name, ref_of

    if name is not None:
        ref = parse_name(name, version=version)
        return connect(Config.open(), remote), ref
    asset = open_asset()
    ref = ref_of(asset)
    if version is False:
        ref = type(ref)(ref.cls, ref.asset, None)
    if remote is not None:
        return connect(asset.config, remote), ref
    return connect_asset(asset), ref


def complete_asset(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of CLASS/ORDINAL[/VERSION]: the assets and versions known here."""
    from ama.porcelain.complete import asset_names

    try:
        return asset_names(incomplete)
    except Exception:  # completion must never print a traceback into the shell
        return []


def complete_version(ctx: click.Context, param: click.Parameter, incomplete: str
                     ) -> list[str]:
    """Shell completion of a VERSION of the asset in the current directory."""
    from ama.porcelain.complete import versions_here

    try:
        return versions_here(incomplete)
    except Exception:  # completion must never print a traceback into the shell
        return []


def complete_class(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of class names: the classes known on this machine."""
    from ama.porcelain.classes import LocalClasses

    try:
        return [n for n in LocalClasses.open().names() if n.startswith(incomplete)]
    except Exception:  # completion must never print a traceback into the shell
        return []
