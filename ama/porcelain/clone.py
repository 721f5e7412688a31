"""``ama clone NAME[/VERSION] [-d DIR] [--soft]``: a new asset directory holding a version of
an asset from the remote (by default its latest, into ``<class>/<ordinal>/``).

The directory is made an asset directory first (``.ama/HEAD`` naming the version, the index
listing its files), then the file bytes are fetched and placed; so a clone that is killed
leaves a directory where ``ama download`` brings the rest. Until the clone has finished,
``.ama/clone`` marks the directory as an unfinished clone of one version: cloning the same
asset into it again resumes it. ``soft`` stops before the bytes: metadata only.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.graph import read_manifest
from ama.plumbing.index import Index
from ama.plumbing.store import Store, home_dir
from ama.plumbing.worktree import META_DIR
from ama.porcelain.asset import Asset, Head, register
from ama.porcelain.classes import AssetClass, LocalClasses, project_dir
from ama.porcelain.config import Config
from ama.porcelain.versions import asset_versions, parse_name, record

if TYPE_CHECKING:
    from ama.plumbing.proxy import ProxyDescriptor

Progress = Callable[..., None]  # see ama.porcelain.download: (done, total[, bytes…], phase=…)


CLONE_MARKER = "clone"  # in .ama/: the version an unfinished clone is placing


class DestinationTaken(AmaError):
    """A clone into a directory that holds files already."""


def _unfinished(root: Path) -> dict[str, str] | None:
    """Return what the unfinished clone in ``root`` is of (``name``, ``version``,
    ``manifest``), or None when ``root`` holds no unfinished clone."""
    try:
        text = (root / META_DIR / CLONE_MARKER).read_text(encoding="utf-8")
        marker = json.loads(text)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    if not isinstance(marker, dict) or not all(
            isinstance(marker.get(k), str) for k in ("name", "version", "manifest")):
        return None
    return marker


def clone(name: str, dest: Path | None = None, *, version: str | None = None,
          soft: bool = False, environ: Mapping[str, str] | None = None,
          progress: Progress | None = None) -> Asset:
    """Clone ``name`` (``class/ordinal`` or ``class/alias``, optionally ``/version``) into
    ``dest`` (default: ``<class>/<ordinal>`` below the working directory); return the
    opened asset directory.

    Raises BadInput (a malformed name, two versions named), NotFound (an unknown asset or
    version), :class:`DestinationTaken`, and the transport's errors; nothing is created
    before the remote has answered.
    """
    from ama.plumbing.transport import RemoteError
    from ama.porcelain.download import REACHING, download, receive, version_files
    from ama.porcelain.remotes import open_remote

    if progress is not None:
        progress(0, 0, phase=REACHING)  # no total: a wait, until the files are counted

    environ = os.environ if environ is None else environ
    cls, asset_name, named_version = parse_name(name)
    if version is not None and named_version is not None and version != named_version:
        raise BadInput(f"{name} names version {named_version}, but version {version} was "
                       "asked for too")
    version = version or named_version
    config = Config.open(environ)
    transport, remote = open_remote(config)
    info, listed = asset_versions(transport, remote.project, cls, asset_name)
    if not listed:
        raise NotFound(f"{info['name']} has no versions yet")
    if version is None:
        chosen = listed[-1]
    else:
        found = [v for v in listed if v["version"] == version]
        if not found:
            shown = ", ".join(v["version"] for v in listed)
            raise NotFound(f"{info['name']} has no version {version} (versions: {shown})",
                           f"list them with 'ama versions {info['name']}'")
        chosen = found[0]
    ordinal = str(info["ordinal"])
    if not ordinal.isascii() or not ordinal.isdigit() or ordinal[0] == "0":
        raise RemoteError(f"the remote {remote.name} answered {ordinal[:100]!r} as the "
                          f"ordinal of {cls}/{asset_name}", "tell the server's administrator")
    root = (Path(dest) if dest is not None else Path(cls) / ordinal).absolute()
    unfinished = _unfinished(root)
    if unfinished is not None:
        # A clone of this asset killed part-way: go on with the version it was placing.
        same = [v for v in listed if v["manifest"] == unfinished["manifest"]]
        if unfinished["name"] != f"{cls}/{ordinal}" or not same or (
                version is not None and version != unfinished["version"]):
            raise DestinationTaken(
                f"{root} holds an unfinished clone of {unfinished['name']} "
                f"{unfinished['version']}",
                f"finish it with 'cd {root} && ama download', or clone into another "
                "directory with -d DIR")
        chosen = same[0]
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DestinationTaken(f"{root} exists and is not an empty directory",
                               "clone into another directory with -d DIR")
    for parent in root.parents:
        if (parent / META_DIR).is_dir():
            raise BadInput(f"{root} is inside the asset directory {parent}: asset "
                           "directories cannot nest", "clone somewhere outside it with -d DIR")
    home = home_dir(environ)
    store = Store(home)
    record(home, remote.name, remote.project, cls, ordinal, listed)
    classes = LocalClasses(project_dir(home, remote.name, remote.project) / "classes")
    if cls not in classes.names():
        classes.put(AssetClass.from_json(transport.get_class(remote.project, cls)))
    parallelism = int(config.get("transfer.parallelism"))
    with store.objects.batch():
        receive(transport, remote.project, store.objects, [(v["manifest"], 0) for v in listed],
                parallelism)
        proxies: dict[str, tuple[str, ProxyDescriptor]] = {}
        files = version_files(store.objects, chosen["manifest"], transport, remote.project,
                              parallelism, proxies, None if soft else progress)
    root.mkdir(parents=True, exist_ok=True)
    meta = root / META_DIR
    meta.mkdir(exist_ok=unfinished is not None)
    head = Head(class_name=cls, asset=ordinal, version=chosen["version"],
                manifest=chosen["manifest"], remote=remote.name, project=remote.project)
    marker = meta / CLONE_MARKER
    index: Index | None = None
    if unfinished is None or not (meta / "HEAD").exists():
        # The marker first: a clone killed from here on is resumed by cloning again.
        write_atomic(marker, json.dumps({"name": f"{cls}/{ordinal}",
                                         "version": chosen["version"],
                                         "manifest": chosen["manifest"]}).encode())
        index = Index(meta / "index", dict(files),
                      tree=read_manifest(store.objects, chosen["manifest"]).tree,
                      proxies={p: (files[p].id, did) for p, (did, _d) in proxies.items()})
        index.write()
        head.write(meta)
    # Resumed with HEAD written: the index holds the stat of the files placed already.
    register(home, root)
    asset = Asset.open(root, environ)
    if not soft:
        download(asset, progress=progress, files=files, index=index,  # removes the marker
                 proxies=proxies)
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    return asset


def clone_inputs(asset: Asset, *, soft: bool = False, base: Path | None = None,
                 environ: Mapping[str, str] | None = None,
                 progress: Progress | None = None) -> list[tuple[str, Asset | None]]:
    """Clone every input of the version ``asset`` holds, and theirs in turn, each into
    ``<class>/<ordinal>`` below ``base`` (default: the working directory), at the version
    the lineage names. Returns ``(name, asset)`` per input, oldest link first; the asset is
    None for an input whose folder holds that version already (left as it is).

    Raises :class:`DestinationTaken` for a folder that holds something else, and what
    :func:`clone` raises; the inputs cloned before stay.
    """
    base = (base or Path.cwd()).absolute()
    done: list[tuple[str, Asset | None]] = []
    seen = {asset.head.manifest}
    todo = list(read_manifest(asset.odb, asset.head.manifest).inputs) if asset.head.manifest \
        else []
    while todo:
        item = todo.pop(0)
        if item.manifest in seen:
            continue
        seen.add(item.manifest)
        cls, ordinal, version = item.name.split("/")
        folder = base / cls / ordinal
        if (folder / META_DIR / "HEAD").is_file():
            there = Asset.open(folder, environ)
            if there.head.manifest != item.manifest:
                raise DestinationTaken(
                    f"{folder} holds {there.head.name} {there.head.version}, not the input "
                    f"{item.name}", f"switch it with 'cd {folder} && ama switch {version}', "
                    "then clone again")
            cloned: Asset | None = None
            current = there
        else:
            cloned = current = clone(item.name, folder, soft=soft, environ=environ,
                                     progress=progress)
        done.append((item.name, cloned))
        todo.extend(read_manifest(current.odb, item.manifest).inputs)
    return done
