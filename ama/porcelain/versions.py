"""``ama versions``: the versions of an asset, and the local record of versions every
command that talks to a remote keeps.

Versions known locally are refs under the asset store::

    projects/<remote>/<project>/versions/<class>/<ordinal>/<version>   → the manifest id

written by upload, fetch and clone (diff and gc read them). Names that users type:
``<class>/<ordinal>``, ``<class>/<alias>``, each optionally followed by ``/<version>``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ama.plumbing import wire
from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.graph import read_manifest
from ama.plumbing.hashing import is_id
from ama.plumbing.objects import CLASS_NAME_RE, VERSION_RE, check_class_name
from ama.plumbing.transport import Transport
from ama.porcelain.asset import Asset
from ama.porcelain.classes import project_dir


class NotUploaded(NotFound):
    """An asset directory whose asset has no version on any remote yet."""


def parse_name(text: str) -> tuple[str, str, str | None]:
    """Split ``<class>/<ordinal|alias>[/<version>]`` into its parts; raise BadInput."""
    parts = text.strip("/").split("/")
    if len(parts) not in (2, 3):
        raise BadInput(f"invalid asset name {text!r}: use CLASS/ORDINAL or CLASS/ALIAS, "
                       "optionally followed by /VERSION (ml-models/1, ml-models/1/0.0.1)")
    check_class_name(parts[0])
    if not CLASS_NAME_RE.match(parts[1]) or parts[1].startswith("temp_"):
        raise BadInput(f"invalid asset name {text!r}: {parts[1]!r} is neither an ordinal "
                       "nor an alias")
    if parts[1].isdigit() and (parts[1].startswith("0")):
        raise BadInput(f"invalid asset name {text!r}: ordinals start at 1, without leading zeros")
    version = parts[2] if len(parts) == 3 else None
    if version is not None and not VERSION_RE.match(version):
        raise BadInput(f"invalid version {version!r} in {text!r}: use MAJOR.MINOR.PATCH, "
                       "such as 0.0.1")
    return parts[0], parts[1], version


def refs_dir(home: Path, remote: str, project: str, cls: str, ordinal: str | int) -> Path:
    """Where the refs of asset ``cls/ordinal`` are; raises BadInput for a class name or
    an ordinal that cannot be one (a remote's answer becomes this path)."""
    check_class_name(cls)
    if not str(ordinal).isascii() or not str(ordinal).isdigit() or str(ordinal)[0] == "0":
        raise BadInput(f"{ordinal!r} is not an ordinal")
    return project_dir(home, remote, project) / "versions" / cls / str(ordinal)


def record(home: Path, remote: str, project: str, cls: str, ordinal: str | int,
           versions: list[wire.Version]) -> None:
    """Write a ref per version (``version`` → ``manifest``) that is not recorded yet. A
    version never changes, so a recorded ref is never rewritten."""
    folder = refs_dir(home, remote, project, cls, ordinal)
    folder.mkdir(parents=True, exist_ok=True)
    for v in versions:
        if not VERSION_RE.match(v["version"]) or not is_id(v["manifest"]):
            raise BadInput(f"{v['version']!r} → {v['manifest']!r} is not a version and its "
                           "manifest")
        path = folder / v["version"]
        if path.exists():
            continue
        write_atomic(path, (v["manifest"] + "\n").encode("ascii"))


def known(home: Path, remote: str, project: str, cls: str, ordinal: str | int) -> dict[str, str]:
    """Return version → manifest id for the versions recorded locally, oldest first."""
    folder = refs_dir(home, remote, project, cls, ordinal)
    found: dict[str, str] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            if VERSION_RE.match(path.name):
                found[path.name] = path.read_text(encoding="utf-8").strip()
    return dict(sorted(found.items(), key=lambda kv: version_key(kv[0])))


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in version.split("."))


@dataclass(frozen=True)
class VersionInfo:
    """One version of an asset: its number, manifest, parent, the time, author and message
    its manifest records, the account that uploaded it and when, and whether the directory
    holds it."""

    name: str
    version: str
    manifest: str
    parent: str | None
    created: str | None
    author: str | None
    message: str | None = None
    current: bool = False
    author_email: str | None = None
    uploader: str | None = None
    uploaded: str | None = None
    status: str = "active"  # the asset's: active, deprecated or obsolete

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "manifest": self.manifest,
                "parent": self.parent, "created": self.created, "author": self.author,
                "author_email": self.author_email, "message": self.message,
                "current": self.current, "uploader": self.uploader, "uploaded": self.uploaded,
                "status": self.status}


def asset_versions(transport: Transport, project: str, cls: str, name: str
                   ) -> tuple[wire.AssetRecord, list[wire.Version]]:
    """Ask the remote for the asset ``cls/name`` (ordinal or alias) and its versions."""
    info = transport.asset(project, cls, name)
    return info, transport.versions(project, cls, str(info["ordinal"]))


def latest_version(asset: Asset) -> str:
    """The latest version of the asset a directory holds, as its remote lists it now (and
    recorded locally on the way). Raises :class:`NotUploaded` for a temp asset, NotFound,
    and the transport's errors."""
    from ama.porcelain.remotes import open_remote

    head = asset.head
    if head.is_temp:
        raise NotUploaded(f"{head.name} has no versions: it was never uploaded",
                          "upload it with 'ama upload -m MESSAGE'")
    transport, remote = open_remote(asset.config, head.remote, head.project)
    info, listed = asset_versions(transport, remote.project, head.class_name, head.asset)
    record(asset.store.home, remote.name, remote.project, head.class_name, info["ordinal"],
           listed)
    if not listed:
        raise NotFound(f"{head.class_name}/{head.asset} has no version on the remote")
    return str(listed[-1]["version"])


def versions(target: Asset | str, environ: Any = None) -> list[VersionInfo]:
    """Return the versions of ``target`` (an asset directory, or a name such as
    ``ml-models/1``), oldest first, as the remote lists them now; they are recorded
    locally on the way. Raises :class:`NotUploaded` for a temp asset, NotFound for an
    unknown asset, and the transport's errors."""
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import open_remote

    if isinstance(target, Asset):
        head = target.head
        if head.is_temp:
            raise NotUploaded(f"{head.name} has no versions: it was never uploaded",
                              "upload it with 'ama upload -m MESSAGE'")
        config, cls, name = target.config, head.class_name, head.asset
        transport, remote = open_remote(config, head.remote, head.project)
        current = head.manifest
        odb = target.odb
    else:
        config = Config.open(environ)
        cls, name, _version = parse_name(target)
        transport, remote = open_remote(config)
        current = None
        from ama.plumbing.store import Store

        odb = Store(config.home).objects
    info, listed = asset_versions(transport, remote.project, cls, name)
    record(config.home, remote.name, remote.project, cls, info["ordinal"], listed)
    result = []
    for v in listed:
        message = v.get("message")
        if message is None:  # a remote that does not send it: the manifest, when it is here
            with contextlib.suppress(AmaError):
                if odb.has(v["manifest"]):
                    message = read_manifest(odb, v["manifest"]).message
        result.append(VersionInfo(v["name"], v["version"], v["manifest"], v.get("parent"),
                                  v.get("created"), v.get("author"), message,
                                  v["manifest"] == current, v.get("author_email"),
                                  v.get("uploader"), v.get("uploaded"),
                                  info.get("status") or "active"))
    return result
