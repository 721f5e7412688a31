"""``ama switch --version V``: make an asset directory hold another version of its asset.

The work is proportional to the files that differ between the two versions: the two trees
are compared folder by folder, skipping folders that are equal
(:func:`~ama.plumbing.graph.diff_trees`), and only the files that differ are fetched,
placed, deleted and restaged. Files changed here and not uploaded are never overwritten
without ``force``: the check compares the index with the version here (nothing to compare
when the index records that it equals that version's tree) and every staged file's stat
with the work tree, re-hashing only the files whose stat changed. A switch that is killed
half-way completes when run again: the target is written to ``.ama/switch`` first, then the
files are moved, then HEAD, and a switch finding ``.ama/switch`` finishes that one by
comparing the whole index with the target (the files it already placed match and are
skipped).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ama.plumbing.checkout import checkout, in_real_folders
from ama.plumbing.crash import crash_point
from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound, path_list
from ama.plumbing.graph import FileSide, diff_trees, read_manifest, read_tree
from ama.plumbing.index import Index, IndexEntry, changes, mode_of, path_key
from ama.plumbing.objects import VERSION_RE, TreeEntry, check_paths
from ama.plumbing.odb import FileObjectDatabase, MissingObject
from ama.plumbing.transport import Transport
from ama.porcelain.asset import Asset, Head, flatten_tree_ids, locked_index
from ama.porcelain.download import (
    REACHING,
    fetch_metadata,
    placing,
    receive,
    syncing,
    version_files,
)
from ama.porcelain.versions import asset_versions, known, record

if TYPE_CHECKING:
    from ama.plumbing.proxy import ProxyDescriptor

Progress = Callable[..., None]  # (done, total[, bytes…][, phase=NAME]): see ama.porcelain.download
SWITCH_FILE = "switch"


class LocalChanges(AmaError):
    """Files changed here and not uploaded, which a switch would overwrite."""


@dataclass
class SwitchResult:
    """The version switched from and to, and the files written and deleted."""

    name: str
    old: str
    new: str
    manifest: str
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    received: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "from": self.old, "to": self.new, "manifest": self.manifest,
                "written": self.written, "deleted": self.deleted, "received": self.received}


def switch(asset: Asset, version: str, *, force: bool = False,
           progress: Progress | None = None) -> SwitchResult:
    """Make ``asset``'s directory hold ``version`` (see the module docstring).

    Raises BadInput (a malformed version), NotFound (an unknown version, a temp asset),
    :class:`LocalChanges` (without ``force``), and the transport's errors.
    """
    from ama.porcelain.remotes import open_remote

    head = asset.head
    if not VERSION_RE.match(version):
        raise BadInput(f"invalid version {version!r}: use MAJOR.MINOR.PATCH, such as 0.0.1",
                       "list versions with 'ama versions'")
    if head.is_temp or head.manifest is None:
        raise NotFound(f"{head.name} was never uploaded: it has no versions to switch to",
                       "upload it with 'ama upload -m MESSAGE'")
    home = asset.store.home
    pending = _pending(asset)
    if progress is not None:
        # No total: a wait, until the version's trees are here and its files are counted.
        progress(0, 0, phase=REACHING)
    transport, remote = open_remote(asset.config, head.remote, head.project)
    versions = known(home, head.remote, head.project, head.class_name, head.asset)
    if version not in versions:
        found, listed = asset_versions(transport, remote.project, head.class_name, head.asset)
        record(home, remote.name, remote.project, head.class_name, found["ordinal"], listed)
        versions = {v["version"]: v["manifest"] for v in listed}
    if version not in versions:
        shown = ", ".join(versions) or "none"
        raise NotFound(f"{head.name} has no version {version} (versions: {shown})",
                       "list versions with 'ama versions'")
    target = versions[version]
    result = SwitchResult(head.name, head.version, version, target)
    fetch = _Fetch(transport, remote.project, asset.store.objects,
                   int(asset.config.get("transfer.parallelism")))
    if pending is not None:
        _finish_pending(asset, fetch, result, progress)
        return result
    if target == head.manifest:
        return result
    odb = asset.store.objects
    # Bring the trees and the bytes first, without holding the index: only the folders and
    # files that differ, all made durable by one sync. HEAD's manifest and trees are
    # fetched too where the store lacks them (``want`` asks for both sides of each level).
    with odb.batch(syncing(progress)):
        fetch([target, head.manifest])
        old_tree = read_manifest(odb, head.manifest).tree
        new_tree = read_manifest(odb, target).tree
        files = {path: new for path, _old, new in diff_trees(odb, old_tree, new_tree,
                                                             want=fetch)}
        check_paths(files, f"version {version} of {head.name}")
        brought: set[str] = set()
        proxies = fetch.proxies(files)
        if progress is not None:
            progress(1, 1, phase=REACHING)  # the wait ends before anything can fork
        result.received = fetch.files([f for p, f in files.items()
                                       if f is not None and p not in proxies],
                                      progress, brought)
        result.received += fetch.from_sources(files, proxies, brought)
    with locked_index(asset) as index:
        changed = _local_changes(asset, index, old_tree, head.manifest, fetch)
        if changed and not force:
            raise LocalChanges(
                f"{len(changed)} file(s) changed here are not uploaded and would be "
                f"lost by switching to {version}:\n{path_list(changed)}",
                "upload them ('ama upload -m MESSAGE'), discard them ('ama discard "
                "--staged --all'), or pass --force to overwrite them")
        # With force, each changed path also goes back to the target's file (or away), so
        # the index ends equal to the target's tree whatever was staged or edited here.
        restore = _files_at(odb, new_tree, [p for p in changed if p not in files], fetch)
        more = fetch.proxies(restore)
        result.received += fetch.files([f for p, f in restore.items()
                                        if f is not None and p not in more], None, brought)
        result.received += fetch.from_sources(restore, more, brought)
        files.update(restore)
        proxies.update(more)
        _write_pending(asset, {"version": version, "manifest": target,
                               "from": head.manifest})
        place = {p: _entry(p, f) for p, f in files.items() if f is not None}
        _move(asset, index, [p for p, f in files.items() if f is None], place, brought,
              new_tree, result, proxies, progress)
        crash_point("switch.before-head")
        _finish(asset, head, version, target)
    result.deleted.sort(key=path_key)
    return result


class _Fetch:
    """Brings what one switch needs and the store lacks from the remote."""

    def __init__(self, transport: Transport, project: str, odb: FileObjectDatabase,
                 parallelism: int) -> None:
        self.transport, self.project, self.odb = transport, project, odb
        self.parallelism = parallelism
        self.descriptors: dict[str, ProxyDescriptor] = {}

    def __call__(self, ids: list[str]) -> None:
        """Bring the manifests or trees ``ids`` that the store lacks."""
        # One stat per id: a level of a tree diff asks for a few thousand trees at most,
        # which the store holds but for the few a remote has to send.
        has = self.odb.has
        lacking = [(oid, 0) for oid in ids if not has(oid)]
        if lacking:
            receive(self.transport, self.project, self.odb, lacking, self.parallelism)

    def files(self, files: list[FileSide], progress: Progress | None,
              brought: set[str]) -> int:
        """Bring the bytes of ``files``, adding the ids received to ``brought``; return
        how many objects were received."""
        return receive(self.transport, self.project, self.odb,
                       [(oid, size) for _kind, oid, size in files], self.parallelism,
                       progress, brought=brought)

    def proxies(self, files: dict[str, FileSide | None]) -> dict[str, tuple[str, str]]:
        """Turn each proxy of ``files`` into the file its descriptor describes (fetched
        and checked: :func:`~ama.plumbing.proxy.parse_descriptor`); return path → (id of
        its bytes, id of its descriptor) for each."""
        from ama.plumbing.proxy import file_descriptor

        found: dict[str, tuple[str, str]] = {}
        described = {p: f for p, f in files.items() if f is not None and f[0] == "proxy"}
        if described:
            self([f[1] for f in described.values()])
        for path, (_kind, did, size) in described.items():
            descriptor = file_descriptor(self.odb.get(did), path, size)
            files[path] = ("blob", descriptor.id, size)
            found[path] = (descriptor.id, did)
            self.descriptors[path] = descriptor
        return found

    def from_sources(self, files: dict[str, FileSide | None],
                     proxies: dict[str, tuple[str, str]], brought: set[str]) -> int:
        """Fetch the bytes of the ``proxies`` the store lacks from their sources, verified
        (:func:`~ama.porcelain.sources.fetch_proxy`); return how many were fetched."""
        count = 0
        for path, (content, _did) in proxies.items():
            if not self.odb.has(content):
                from ama.porcelain.sources import fetch_proxy

                fetch_proxy(self.odb, path, self.descriptors[path])
                brought.add(content)
                count += 1
        return count

    def metadata(self, manifest: str) -> None:
        """Bring ``manifest`` and every tree below it."""
        fetch_metadata(self.transport, self.project, self.odb, [manifest],
                       parallelism=self.parallelism)


def _entry(path: str, file: FileSide) -> IndexEntry:
    """A stat-less index entry for ``file`` at ``path`` (the checkout records the stat)."""
    kind, oid, size = file
    return IndexEntry(path, oid, size, 0, 0, mode_of(kind))


def _local_changes(asset: Asset, index: Index, tree: str, manifest: str,
                   fetch: _Fetch) -> list[str]:
    """Paths whose content here differs from the version whose root tree is ``tree``:
    staged files whose bytes, executable bit or presence changed since they were staged,
    and staged changes (none to look for when the index records that it equals ``tree``).
    The trees of that version (``manifest`` and all below) are fetched if the store lacks
    them."""
    changed: set[str] = set()
    for change in changes(index, asset.root):
        if change.state == "touched":  # the same bytes: the new stat saves a re-hash later
            index.add(change.entry)
        else:
            changed.add(change.entry.path)
    if index.tree != tree:
        try:
            committed = flatten_tree_ids(asset.odb, tree)
        except MissingObject:
            fetch.metadata(manifest)
            committed = flatten_tree_ids(asset.odb, tree)
        entries = index.entries
        proxies = index.staged_proxies()
        for path, e in entries.items():
            side = ("proxy", proxies[path][1]) if path in proxies else (e.type, e.id)
            if committed.get(path) != side:
                changed.add(path)
        changed.update(p for p in committed if p not in entries)
    return sorted(changed, key=path_key)


def _files_at(odb: FileObjectDatabase, tree: str, paths: list[str],
              fetch: _Fetch) -> dict[str, FileSide | None]:
    """Path → the file that the tree ``tree`` holds there (None: no file), for ``paths``;
    each folder on the way is read once, and fetched if the store lacks it."""
    folders: dict[str, dict[str, TreeEntry] | None] = {}

    def folder(prefix: str) -> dict[str, TreeEntry] | None:
        if prefix not in folders:
            oid: str | None = tree
            if prefix:
                parent, _, name = prefix[:-1].rpartition("/")
                above = folder(parent + "/" if parent else "")
                entry = None if above is None else above.get(name)
                oid = entry.id if entry is not None and entry.type == "tree" else None
            if oid is None:
                folders[prefix] = None
            else:
                fetch([oid])
                folders[prefix] = {e.name: e for e in read_tree(odb, oid).entries}
        return folders[prefix]

    found: dict[str, FileSide | None] = {}
    for path in paths:
        parent, _, name = path.rpartition("/")
        listing = folder(parent + "/" if parent else "")
        entry = None if listing is None else listing.get(name)
        found[path] = (None if entry is None or entry.type == "tree"
                       else (entry.type, entry.id, entry.size))
    return found


def _move(asset: Asset, index: Index, gone: list[str], place: dict[str, IndexEntry],
          brought: set[str], tree: str, result: SwitchResult,
          proxies: dict[str, tuple[str, str]] | None = None,
          progress: Progress | None = None) -> None:
    """Unstage and delete ``gone`` (a path not staged is an untracked file: left alone),
    then stage and place ``place`` (``proxies`` among them: path → (id of the bytes, id of
    the descriptor)), recording that the index now equals ``tree``; the checkout writes the
    index."""
    for path in gone:
        if not index.remove(path):
            continue
        full = asset.root / path
        if not in_real_folders(asset.root, path):
            continue  # through a symbolic link: not a file of this work tree
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if not full.is_dir() or full.is_symlink():
                os.unlink(full)
                result.deleted.append(path)
        _prune_empty(asset, full.parent)
    for entry in place.values():
        index.add(entry)
    index.proxies.update(proxies or {})
    index.tree = tree  # after the adds, which forget it
    result.written = checkout(asset.store.objects, index, asset.root,
                              sorted(place, key=path_key), asset.link_strategy(),
                              force=True, verified=brought, progress=placing(progress))


def _finish(asset: Asset, head: Head, version: str, manifest: str) -> None:
    """Move HEAD to ``version``, forget staged inputs, and drop ``.ama/switch``."""
    asset.set_head(Head(class_name=head.class_name, asset=head.asset, version=version,
                        manifest=manifest, remote=head.remote, project=head.project))
    from ama.porcelain.inputs import reset as reset_inputs

    reset_inputs(asset)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(asset.dir.meta / SWITCH_FILE)


def _finish_pending(asset: Asset, fetch: _Fetch, result: SwitchResult,
                    progress: Progress | None) -> None:
    """Switch to ``result.manifest`` after a switch was killed half-way: the index may hold
    either version's entries and the work tree a mix, so every staged path is compared
    with the target's files. There is no check for local changes: the switch that wrote
    ``.ama/switch`` made it."""
    odb = asset.store.objects
    target = result.manifest
    with odb.batch(syncing(progress)):
        described: dict[str, tuple[str, ProxyDescriptor]] = {}
        new_files = version_files(odb, target, fetch.transport, fetch.project,
                                  fetch.parallelism, described)
        here = {p: e.id for p, e in asset.index().entries.items()}
        brought: set[str] = set()
        result.received = fetch.files(
            [(e.type, e.id, e.size) for p, e in new_files.items()
             if here.get(p) != e.id and p not in described], progress, brought)
        proxies = {p: (new_files[p].id, did) for p, (did, _d) in described.items()}
        fetch.descriptors.update({p: d for p, (_did, d) in described.items()})
        result.received += fetch.from_sources({}, proxies, brought)
    with locked_index(asset) as index:
        old = index.entries
        differ = {p: e for p, e in new_files.items()
                  if (cur := old.get(p)) is None or cur.id != e.id
                  or cur.type != e.type}
        gone = [p for p in old if p not in new_files]
        _move(asset, index, gone, differ, brought, read_manifest(odb, target).tree, result,
              proxies, progress)
        _finish(asset, asset.head, result.new, target)
    result.deleted.sort(key=path_key)


def _prune_empty(asset: Asset, folder: Any) -> None:
    root = asset.root
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _pending(asset: Asset) -> dict[str, Any] | None:
    try:
        value = json.loads((asset.dir.meta / SWITCH_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_pending(asset: Asset, value: dict[str, Any]) -> None:
    write_atomic(asset.dir.meta / SWITCH_FILE, (json.dumps(value) + "\n").encode("utf-8"))
