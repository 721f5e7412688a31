"""Looking assets and versions up on their remote (``ama info``), and the names users type
for them (docs/design.md §1): ``<class>/<ordinal>``, ``<class>/<alias>``, each optionally followed
by ``/<version>``.

The other metadata verbs (list, inputs, find, alias, asset set) reach the remote through
:func:`connect` and name assets with :func:`parse_name`, so they live here, beside the
verb that uses them most.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ama.plumbing import wire
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.graph import read_manifest
from ama.plumbing.objects import CLASS_NAME_RE, Manifest, check_version
from ama.plumbing.odb import MissingObject
from ama.plumbing.transport import Transport
from ama.porcelain.asset import Asset
from ama.porcelain.config import Config

_ORDINAL_RE = re.compile(r"[1-9][0-9]*\Z")


class NotUploaded(NotFound):
    """The asset directory holds a temp asset: there is nothing on the remote yet."""


# -- names -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetRef:
    """An asset, or one version of it, as a user named it: ``asset`` is an ordinal or an
    alias; ``version`` is None for "the asset" (or its latest version)."""

    cls: str
    asset: str
    version: str | None = None

    @property
    def is_alias(self) -> bool:
        return not _ORDINAL_RE.match(self.asset)

    def __str__(self) -> str:
        base = f"{self.cls}/{self.asset}"
        return f"{base}/{self.version}" if self.version else base


def parse_name(text: str, version: bool | None = None) -> AssetRef:
    """Parse ``CLASS/ASSET`` or ``CLASS/ASSET/VERSION`` (ASSET: an ordinal or an alias).

    ``version`` True requires the version part, False forbids it, None allows either.
    Raises :class:`BadInput` naming what is wrong and the expected form.
    """
    form = ("CLASS/ASSET[/VERSION]" if version is None
            else "CLASS/ASSET/VERSION" if version else "CLASS/ASSET")
    hint = f"name it as {form}, for example ml-models/1{'/0.0.0' if version else ''}"
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadInput(f"invalid asset name {text!r}: expected {form}", hint)
    cls, asset = parts[0], parts[1]
    if not CLASS_NAME_RE.match(cls):
        raise BadInput(f"invalid asset name {text!r}: {cls!r} is not a class name", hint)
    if not (_ORDINAL_RE.match(asset) or (CLASS_NAME_RE.match(asset) and not asset.isdigit())):
        raise BadInput(f"invalid asset name {text!r}: {asset!r} is neither an ordinal "
                       "(1, 2, …) nor an alias", hint)
    number = parts[2] if len(parts) == 3 else None
    if number is not None:
        try:
            check_version(number)
        except BadInput:
            raise BadInput(f"invalid asset name {text!r}: {number!r} is not a version "
                           "such as 0.0.1", hint) from None
    if version is True and number is None:
        raise BadInput(f"{text!r} names an asset, not one of its versions", hint)
    if version is False and number is not None:
        raise BadInput(f"{text!r} names a version; give the asset alone", hint)
    return AssetRef(cls, asset, number)


# -- reaching the remote ---------------------------------------------------------------------


@dataclass
class Remote:
    """A transport to a remote, and the project the command works in there."""

    transport: Transport
    project: str
    name: str


def connect(config: Config, remote: str | None = None, project: str | None = None) -> Remote:
    """Open ``remote`` (default: remote.default) for ``project`` (default: project.active).
    Raises UnknownRemote; reaching the remote raises the transport's errors later."""
    from ama.porcelain.remotes import open_remote

    transport, found = open_remote(config, remote, project)
    return Remote(transport, found.project, found.name)


def connect_asset(asset: Asset) -> Remote:
    """Open the remote and project an asset directory's HEAD names."""
    return connect(asset.config, asset.head.remote, asset.head.project)


def ref_of(asset: Asset) -> AssetRef:
    """The name of the asset (and version) an asset directory holds; raises
    :class:`NotUploaded` for a temp asset."""
    head = asset.head
    if head.is_temp:
        raise NotUploaded(f"{asset.root} holds {head.name}, which is not uploaded yet",
                          "upload it first with 'ama upload -m MESSAGE'")
    return AssetRef(head.class_name, head.asset, head.version)


def resolve_version(remote: Remote, ref: AssetRef) -> wire.Version:
    """Return the remote's record of the version ``ref`` names (its latest version when
    ``ref.version`` is None): ``{"class","ordinal","name","version","manifest","tree",
    "parent","created","author"}``. Raises :class:`NotFound` naming what is missing."""
    if ref.version is None:
        record = remote.transport.asset(remote.project, ref.cls, ref.asset)
        latest = record.get("latest")
        if latest is None:
            raise NotFound(f"asset {ref} has no version yet",
                           "upload one from its asset directory with 'ama upload -m MESSAGE'")
        return latest
    for version in remote.transport.versions(remote.project, ref.cls, ref.asset):
        if version["version"] == ref.version:
            return version
    raise NotFound(f"version {ref.version} of {ref.cls}/{ref.asset} not found",
                   f"list its versions with 'ama info {ref.cls}/{ref.asset}'")


# -- ama info ------------------------------------------------------------------------------------


@dataclass
class Info:
    """What ``ama info`` shows: the asset's record on the remote (title, description, tags,
    aliases, latest version), the version in question, its manifest's message, inputs and
    metadata when the manifest is in the asset store, and the version's dependents."""

    asset: wire.AssetRecord
    version: wire.Version | None
    manifest: Manifest | None = None
    dependents: list[wire.Dependent] = field(default_factory=list)
    versions: list[wire.Version] = field(default_factory=list)

    @property
    def hash(self) -> str | None:
        """The asset hash: the root tree id of the version."""
        if self.version is not None:
            return str(self.version["tree"])
        return self.manifest.tree if self.manifest is not None else None

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "asset": self.asset,
            "version": self.version,
            "hash": self.hash,
            "message": m.message if m else None,
            "metadata": m.metadata if m else None,
            "inputs": [i.to_json() for i in m.inputs] if m else None,
            "dependents": self.dependents,
            "versions": self.versions,
        }


def local_manifest(asset_or_store: Any, oid: str) -> Manifest | None:
    """Return the manifest ``oid`` from the asset store, or None when it is not there."""
    odb = asset_or_store.odb if isinstance(asset_or_store, Asset) else asset_or_store
    try:
        return read_manifest(odb, oid)
    except MissingObject:
        return None


def info(remote: Remote, ref: AssetRef, odb: Any = None, *, fetch_manifest: bool = False
         ) -> Info:
    """Look ``ref`` up on ``remote``: the asset, the version named (or the latest), every
    version when no version was named, and the dependents of the version. The manifest is
    read from ``odb`` (the asset store) when it is there, and with ``fetch_manifest``
    brought from the remote (verified) when it is not. Raises :class:`NotFound`."""
    record = remote.transport.asset(remote.project, ref.cls, ref.asset)
    versions: list[wire.Version] = []
    version: wire.Version | None
    if ref.version is None:
        versions = remote.transport.versions(remote.project, ref.cls, ref.asset)
        version = record.get("latest")
    else:
        version = resolve_version(remote, ref)
    manifest = None
    dependents: list[wire.Dependent] = []
    if version is not None:
        if odb is not None and fetch_manifest and not odb.has(version["manifest"]):
            from ama.porcelain.download import receive

            receive(remote.transport, remote.project, odb, [(version["manifest"], 0)])
        if odb is not None:
            manifest = local_manifest(odb, version["manifest"])
        dependents = remote.transport.dependents(remote.project, version["manifest"])
    return Info(record, version, manifest, dependents, versions)


def asset_hash(asset: Asset) -> str:
    """The asset hash of the version an asset directory holds, from the asset store alone
    (no remote needed); for an asset not uploaded yet, the hash its staged files would
    have as a version (what ``ama write-tree`` prints). Raises :class:`MissingObject`."""
    if asset.head.is_temp:
        from ama.plumbing.graph import write_tree

        index = asset.index()
        return write_tree(asset.odb, index.entries.values(), index.staged_proxies())
    assert asset.head.manifest is not None
    manifest = local_manifest(asset, asset.head.manifest)
    if manifest is None:
        raise MissingObject(asset.head.manifest, "the asset store")
    return manifest.tree

