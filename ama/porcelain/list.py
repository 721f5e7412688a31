"""The assets of a class on the remote (``ama list``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ama.plumbing import wire
from ama.plumbing.objects import check_class_name
from ama.porcelain.info import Remote


@dataclass(frozen=True)
class AssetSummary:
    """One row of ``ama list``: the asset's name, aliases, title, tags and latest version."""

    name: str
    ordinal: int
    aliases: tuple[str, ...]
    title: str
    tags: tuple[str, ...]
    latest: str | None
    versions: int
    status: str = "active"
    deleted: str | None = None

    @classmethod
    def from_remote(cls, record: wire.AssetRecord) -> AssetSummary:
        latest = record.get("latest")
        return cls(record["name"], int(record["ordinal"]), tuple(record.get("aliases") or ()),
                   record.get("title") or "", tuple(record.get("tags") or ()),
                   latest["version"] if latest else None, int(record.get("versions") or 0),
                   record.get("status") or "active", record.get("deleted"))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ordinal": self.ordinal, "aliases": list(self.aliases),
                "title": self.title, "tags": list(self.tags), "latest": self.latest,
                "versions": self.versions, "status": self.status, "deleted": self.deleted}


def list_assets(remote: Remote, cls: str, deleted: bool = False) -> list[AssetSummary]:
    """Return every asset of class ``cls`` by ordinal (with ``deleted``, only the deleted
    ones). Raises BadInput for a bad class name and NotFound for a class the project does
    not have."""
    check_class_name(cls)
    found = (remote.transport.assets(remote.project, cls, deleted=True) if deleted
             else remote.transport.assets(remote.project, cls))
    return [AssetSummary.from_remote(r) for r in found]
