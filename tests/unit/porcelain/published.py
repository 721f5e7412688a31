"""Versions on a remote for the metadata tests, made the way an upload makes them: objects
written to the asset store, negotiated and sent through the transport, then committed."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Union

from ama.plumbing.objects import Author, Input, Manifest, Tree, TreeEntry
from ama.plumbing.store import Store
from ama.plumbing.transport import Transport

Files = dict[str, Union[bytes, "Files"]]


def _write_tree(store: Store, files: Files) -> tuple[str, int, list[str]]:
    entries, written = [], []
    for name, value in files.items():
        if isinstance(value, dict):
            oid, size, below = _write_tree(store, value)
            entries.append(TreeEntry("tree", oid, size, name))
            written += below
        else:
            oid = store.objects.write(value)
            entries.append(TreeEntry("blob", oid, len(value), name))
        written.append(oid)
    tree = Tree.of(entries)
    oid = store.objects.write(tree.serialize())
    return oid, tree.size, [*written, oid]


def publish(transport: Transport, project: str, cls: str, files: Files,
            asset: int | None = None, parent: str | None = None,
            inputs: tuple[Input, ...] = (), message: str = "v") -> dict[str, Any]:
    """Upload ``files`` as the next version of ``cls/asset`` (a new asset when None) and
    return the remote's record of the version."""
    store = Store.open()
    tree, _size, ids = _write_tree(store, files)
    manifest = Manifest.create(tree, Author("T", "t@example.org"),
                               datetime(2026, 11, 27, tzinfo=timezone.utc), message,
                               [parent] if parent else [], list(inputs))
    oid = store.objects.write(manifest.serialize())
    ids.append(oid)
    wanted = [{"id": i, "size": store.objects.size(i)} for i in dict.fromkeys(ids)]
    answer = transport.batch(project, "upload", wanted)
    for item in answer["objects"]:
        action = (item.get("actions") or {}).get("upload")
        if action:
            transport.upload(action, store.objects.path(item["id"]))  # type: ignore[attr-defined]
    verify = [item["id"] for item in answer["objects"] if (item.get("actions") or {}).get("verify")]
    if verify:
        transport.verify(project, verify)
    return transport.commit(project, cls, asset, parent, oid, uuid.uuid4().hex)
