"""``ama history``: what changed in each version of an asset, newest first.

Each version is compared with its parent (the first version with nothing), from the
manifests and trees in the store; those missing are fetched first (metadata only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ama.plumbing.graph import read_manifest
from ama.plumbing.jsontext import Metadata
from ama.porcelain.asset import Asset
from ama.porcelain.diff import FileChange, compare_sides, tree_side
from ama.porcelain.versions import NotUploaded, VersionInfo, versions


@dataclass
class HistoryEntry:
    """One version, its message and metadata, and the files it added, modified or deleted."""

    version: VersionInfo
    message: str
    metadata: Metadata
    changes: list[FileChange] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.version.to_json(), "message": self.message, "metadata": self.metadata,
                "changes": [c.to_json() for c in self.changes]}


def history(asset: Asset) -> list[HistoryEntry]:
    """Return the history of ``asset``'s asset, newest version first. Raises
    :class:`~ama.porcelain.versions.NotUploaded` and the transport's errors."""
    from ama.porcelain.download import fetch_metadata
    from ama.porcelain.remotes import open_remote

    head = asset.head
    if head.is_temp:
        raise NotUploaded(f"{head.name} has no history: it was never uploaded",
                          "upload it with 'ama upload -m MESSAGE'")
    listed = versions(asset)
    missing = [v.manifest for v in listed if not asset.store.objects.has(v.manifest)]
    if missing or listed:
        transport, remote = open_remote(asset.config, head.remote, head.project)
        fetch_metadata(transport, remote.project, asset.store.objects, [v.manifest for v in listed],
                       parallelism=int(asset.config.get("transfer.parallelism")))
    by_manifest = {v.manifest: v for v in listed}
    entries: list[HistoryEntry] = []
    for v in listed:
        manifest = read_manifest(asset.store.objects, v.manifest)
        parent = manifest.parents[0] if manifest.parents else None
        old = tree_side(asset, read_manifest(asset.store.objects, parent).tree) if (
            parent and parent in by_manifest) else {}
        new = tree_side(asset, manifest.tree)
        entries.append(HistoryEntry(v, manifest.message, manifest.metadata,
                                    compare_sides(old, new)))
    entries.reverse()
    return entries
