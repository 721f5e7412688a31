"""``ama project list|activate NAME|info|create NAME``: the projects of the default remote
and which one commands work in (``project.active``, default ``default``)."""

from __future__ import annotations

from ama.plumbing import wire
from ama.plumbing.errors import BadInput
from ama.porcelain.config import Config
from ama.porcelain.remotes import InProcessTransport, open_remote


class ProjectChoice(wire.ProjectRole):
    """A project the user may use, and whether commands work in it now."""

    active: bool


class ProjectInfo(wire.Project):
    """A project, the remote it is on, and whether commands work in it now."""

    remote: str
    url: str
    active: bool


def list_projects(config: Config) -> list[ProjectChoice]:
    """Return the projects the user may use on the default remote (``name``, ``role``,
    ``active``)."""
    transport, info = open_remote(config)
    return [{**p, "active": p["name"] == info.project} for p in transport.projects()]


def info(config: Config, name: str | None = None) -> ProjectInfo:
    """Return a project (default: the active one) with the remote it is on."""
    transport, remote = open_remote(config)
    project = transport.project(name or remote.project)
    return {**project, "remote": remote.name, "url": remote.url,
            "active": project["name"] == remote.project}


def activate(config: Config, name: str) -> ProjectInfo:
    """Make ``name`` the active project after checking the remote has it for this user
    (NotFound otherwise); return it."""
    found = info(config, name)
    config.set("project.active", name)
    return {**found, "active": True}


def create(config: Config, name: str) -> wire.StoredProject:
    """Create the project ``name`` on the default remote, which must be a ``file://`` one
    (on a server, its admin runs 'ama-server project add')."""
    from ama.plumbing.objects import check_class_name

    check_class_name(name)
    transport, remote = open_remote(config)
    if not isinstance(transport, InProcessTransport):
        raise BadInput(f"projects on the server {remote.url} are created by its admin",
                       f"ask them to run 'ama-server project add {name} --storage URL'")
    return transport.create_project(name)
