"""ama project: list the projects of the remote and choose the one to work in."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._porcelain import emit_json, json_array_option, json_option


@group(
    "project",
    examples=[
        ("List the projects you may use (* marks the active one):", "ama project list"),
        ("Work in another project:", "ama project activate vision"),
        ("Create a project on a folder remote:", "ama project create vision"),
    ],
    see_also=["ama-remote(1)", "ama-auth(1)"],
    exit_codes={0: "success", 2: "a bad name, or create on a server",
                3: "no such project", 4: "not logged in or not allowed",
                5: "the remote cannot be reached"},
)
def command() -> None:
    """List, show, activate and create projects of the default remote.

    A project is a workspace on a remote with its own classes, assets, storage and
    members. Commands work in the active project (project.active, default 'default').
    """


@command.command("list", examples=[
    ("List your projects:", "ama project list")])
@json_array_option
def list_(as_json: bool) -> None:
    """List the projects you may use, with your role."""
    from ama.porcelain.config import Config
    from ama.porcelain.project import list_projects

    projects = list_projects(Config.open())
    if as_json:
        emit_json(projects)
        return
    for p in projects:
        click.echo(f"{'*' if p['active'] else ' '} {p['name']}\t{p.get('role', '')}")


@command.command("activate", examples=[
    ("Work in the project vision:", "ama project activate vision")])
@click.argument("name")
def activate(name: str) -> None:
    """Make NAME the project commands work in."""
    from ama.porcelain.config import Config
    from ama.porcelain.project import activate as activate_project

    activate_project(Config.open(), name)
    click.echo(f"Active project: {name}")


@command.command("info", examples=[
    ("Show the active project:", "ama project info")])
@click.argument("name", required=False)
@json_option
def info(name: str | None, as_json: bool) -> None:
    """Show a project (default: the active one)."""
    from ama.porcelain.config import Config
    from ama.porcelain.project import info as project_info

    found = project_info(Config.open(), name)
    if as_json:
        emit_json(found)
        return
    for key, value in sorted(found.items()):
        click.echo(f"{key}: {value}")


@command.command("create", examples=[
    ("Create a project on a folder remote:", "ama project create vision")])
@click.argument("name")
@json_option
def create(name: str, as_json: bool) -> None:
    """Create the project NAME on the default remote (a file:// remote only)."""
    from ama.porcelain.config import Config
    from ama.porcelain.project import create as create_project

    made = create_project(Config.open(), name)
    if as_json:
        emit_json(made)
    else:
        click.echo(f"Created project {made['name']}")
