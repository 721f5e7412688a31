"""``ama discard [--staged] PATH…|--all``: throw changes away, restoring bytes from the store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ama.plumbing.checkout import checkout
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.index import IndexEntry, mode_of, path_key
from ama.porcelain.add import pathspecs
from ama.porcelain.asset import Asset, locked_index, under_any


@dataclass
class Discarded:
    """Files written back into the work tree, and files unstaged (with ``staged``)."""

    restored: list[str] = field(default_factory=list)
    unstaged: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"restored": self.restored, "unstaged": self.unstaged}


def discard(asset: Asset, paths: list[str] | None = None, staged: bool = False,
            cwd: str | os.PathLike[str] | None = None) -> Discarded:
    """Throw away the changes below ``paths`` (None: the whole asset directory).

    Without ``staged``: every staged file whose work-tree copy was changed or deleted gets
    its staged bytes back. With ``staged``: the index goes back to the version HEAD names
    (files staged since are unstaged and left in place as untracked files) and the work
    tree gets that version's bytes back. Untracked files are never touched. A path that
    matches nothing staged or committed raises :class:`NotFound` before anything changes;
    a needed object missing from the store raises
    :class:`~ama.plumbing.odb.MissingObject`.
    """
    if paths is not None and not paths:
        raise BadInput("name the paths to discard, or pass --all")
    prefixes = [""] if paths is None else pathspecs(asset, paths, cwd)
    committed = asset.committed() if staged else {}
    result = Discarded()
    with locked_index(asset) as index:
        if paths is not None:
            for name, prefix in zip(paths, prefixes, strict=True):
                if not any(under_any(p, [prefix]) for p in index.entries) and not any(
                        under_any(p, [prefix]) for p in committed):
                    raise NotFound(f"{name} is not staged" +
                                   (" nor in the last version" if staged else "") +
                                   ", so there is nothing to discard")
        chosen = [p for p in index.entries if under_any(p, prefixes)]
        if staged:
            for path in chosen:
                if path not in committed:
                    index.remove(path)
                    result.unstaged.append(path)
            for path, entry in committed.items():
                if not under_any(path, prefixes):
                    continue
                current = index.get(path)
                oid = entry.id
                if entry.type == "proxy":  # staged as its bytes, which its descriptor names
                    from ama.plumbing.proxy import parse_descriptor

                    oid = parse_descriptor(asset.odb.get(entry.id)).id
                    if index.proxies.get(path) != (oid, entry.id):
                        index.proxies[path] = (oid, entry.id)
                        index.tree = None
                    mode = mode_of("blob")
                else:
                    index.proxies.pop(path, None)
                    mode = mode_of(entry.type)
                if current is None or current.id != oid or current.mode != mode:
                    if current is None or current.id != oid:
                        result.unstaged.append(path)
                    index.add(IndexEntry(path, oid, entry.size, 0, 0, mode))
            chosen = [p for p in committed if under_any(p, prefixes)]
        result.restored = checkout(asset.odb, index, asset.root, chosen,
                                   asset.link_strategy(), force=True)
    result.restored.sort(key=path_key)
    result.unstaged.sort(key=path_key)
    return result
