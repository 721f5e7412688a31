"""Shell completion of the names ama commands take: classes, assets and versions.

Completion runs on every Tab, so it reads only what this machine has cached for the active
project of the default remote (``projects/<remote>/<project>/`` in the asset store: the
classes, and a ref per version of every asset a command has listed, cloned or uploaded) and
never asks the remote. A name the machine has never seen is simply not offered.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ama.plumbing.objects import VERSION_RE
from ama.plumbing.store import home_dir
from ama.porcelain.classes import LocalClasses, project_dir
from ama.porcelain.config import Config
from ama.porcelain.versions import known, version_key


def _project(environ: Mapping[str, str] | None) -> tuple[Path, str, str]:
    config = Config.open(environ)
    return home_dir(environ), config.get("remote.default"), config.get("project.active")


def asset_names(incomplete: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Complete ``CLASS``, ``CLASS/ORDINAL`` and ``CLASS/ORDINAL/VERSION``: classes end in
    ``/`` so the shell goes on to their assets."""
    home, remote, project = _project(environ)
    parts = incomplete.split("/")
    if len(parts) == 1:
        return [f"{name}/" for name in LocalClasses.open(environ).names()
                if name.startswith(incomplete)]
    versions_dir = project_dir(home, remote, project) / "versions" / parts[0]
    if len(parts) == 2:
        if not versions_dir.is_dir():
            return []
        ordinals = sorted((p.name for p in versions_dir.iterdir() if p.name.isdigit()), key=int)
        return [f"{parts[0]}/{o}" for o in ordinals if o.startswith(parts[1])]
    if len(parts) == 3 and parts[1].isdigit():
        listed = known(home, remote, project, parts[0], parts[1])
        return [f"{parts[0]}/{parts[1]}/{v}" for v in listed if v.startswith(parts[2])]
    return []


def versions_here(incomplete: str, cwd: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> list[str]:
    """Complete a version of the asset whose directory holds ``cwd``: the versions this
    machine knows of, oldest first. Empty outside an asset directory or in a temp asset."""
    from ama.porcelain.asset import Asset

    asset = Asset.open(cwd, environ)
    head = asset.head
    if head.is_temp:
        return []
    home = home_dir(environ)
    listed = known(home, head.remote, head.project, head.class_name, head.asset)
    return [v for v in sorted(listed, key=version_key)
            if VERSION_RE.match(v) and v.startswith(incomplete)]
