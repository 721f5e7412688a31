"""``ama fetch [NAME | --class C | --all]`` and ``ama class fetch``: bring metadata and history
from the remote, never file bytes.

For each asset: its versions (recorded as local version refs), their manifests, and the
trees of every version, so ``ama versions``, ``ama history``, ``ama diff`` and ``ama switch``
know what each version holds. With no NAME, the asset of the current asset directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ama.plumbing.errors import BadInput
from ama.plumbing.store import Store
from ama.porcelain.asset import Asset
from ama.porcelain.classes import AssetClass, LocalClasses, project_dir
from ama.porcelain.config import Config
from ama.porcelain.versions import NotUploaded, asset_versions, parse_name, record


@dataclass
class Fetched:
    """One asset fetched: its name and its versions (oldest first)."""

    name: str
    versions: list[str]
    latest: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "versions": self.versions, "latest": self.latest}


@dataclass
class FetchResult:
    """The assets fetched and how many objects (manifests, trees) arrived."""

    assets: list[Fetched] = field(default_factory=list)
    objects: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"assets": [a.to_json() for a in self.assets], "objects": self.objects}


def fetch_classes(config: Config, remote: str | None = None) -> list[AssetClass]:
    """Bring every class of the active project from the remote into the local cache;
    return them."""
    from ama.porcelain.remotes import open_remote

    transport, info = open_remote(config, remote)
    local = LocalClasses(project_dir(config.home, info.name, info.project) / "classes")
    fetched = []
    for value in transport.classes(info.project):
        cls = AssetClass.from_json(value)
        local.put(cls)
        fetched.append(cls)
    return fetched


def fetch(config: Config, name: str | None = None, cls: str | None = None, all: bool = False,
          *, asset: Asset | None = None, progress: Any = None) -> FetchResult:
    """Fetch the asset ``name`` (``class/ordinal`` or ``class/alias``), every asset of the
    class ``cls``, every asset of every class (``all``), or the asset of ``asset``'s
    directory; return what was fetched. Raises BadInput for more than one choice, NotFound,
    :class:`~ama.porcelain.versions.NotUploaded`, and the transport's errors."""
    from ama.porcelain.download import fetch_metadata
    from ama.porcelain.remotes import open_remote

    if sum(bool(x) for x in (name, cls, all)) > 1:
        raise BadInput("fetch one thing: NAME, --class CLASS or --all")
    remote_name = project = None
    if asset is not None and not (name or cls or all):
        head = asset.head
        if head.is_temp:
            raise NotUploaded(f"{head.name} was never uploaded: there is nothing to fetch",
                              "name an asset: 'ama fetch CLASS/ORDINAL'")
        name = f"{head.class_name}/{head.asset}"
        remote_name, project = head.remote, head.project
    elif not (name or cls or all):
        raise BadInput("name what to fetch: NAME, --class CLASS or --all, or run it in an "
                       "asset directory")
    transport, info = open_remote(config, remote_name, project)
    targets: list[tuple[str, str]] = []
    if name:
        c, n, _version = parse_name(name)
        targets.append((c, n))
    else:
        classes = fetch_classes(config, remote_name) if all else [cls]
        for klass in classes:
            class_name = klass.name if isinstance(klass, AssetClass) else str(klass)
            targets += [(class_name, str(a["ordinal"]))
                        for a in transport.assets(info.project, class_name)]
    odb = Store(config.home).objects
    parallelism = int(config.get("transfer.parallelism"))
    result = FetchResult()
    for c, n in targets:
        found, listed = asset_versions(transport, info.project, c, n)
        record(config.home, info.name, info.project, c, found["ordinal"], listed)
        result.objects += fetch_metadata(transport, info.project, odb,
                                         [v["manifest"] for v in listed],
                                         parallelism=parallelism, progress=progress)
        result.assets.append(Fetched(found["name"], [v["version"] for v in listed],
                                     listed[-1]["version"] if listed else None))
    return result
