"""Lineage staged for the next upload: ``.ama/inputs`` (``ama inputs add|list|remove``).

An input says which version of another asset a version was made from (docs/design.md §1). Inputs
are to lineage what the index is to files: ``.ama/inputs`` holds the complete list of
inputs the next upload records in its manifest. While the file is absent, that list is the
inputs of the version the directory holds (so an upload keeps them, as it keeps unchanged
files); the first ``ama inputs add`` or ``remove`` writes the file. The file is one
canonical JSON object and a newline, inputs sorted by name::

    {"format":"ama-inputs/1","inputs":[{"label":"training-data",
     "manifest":"<64 hex>","name":"imagenet-subsets/3/0.0.1"}]}

``name`` is always ``<class>/<ordinal>/<version>`` (an alias is resolved when the input is
added); the file is replaced atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ama.plumbing import wire
from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.objects import Input, InvalidObject, canonical_json
from ama.plumbing.odb import MissingObject
from ama.porcelain.asset import Asset
from ama.porcelain.info import Remote, local_manifest, parse_name, resolve_version

INPUTS_FILE = "inputs"
INPUTS_FORMAT = "ama-inputs/1"
MAX_LABEL = 200


class CorruptInputs(BadInput):
    """``.ama/inputs`` that is not what ama writes."""


class NotAnInput(NotFound):
    """``ama inputs remove`` of a version that is not among the staged inputs."""


def inputs_path(asset: Asset) -> Path:
    return asset.dir.meta / INPUTS_FILE


def recorded(asset: Asset) -> list[Input]:
    """Return the inputs of the version the directory holds (none for a temp asset).
    Raises :class:`MissingObject` when its manifest is not in the asset store."""
    oid = asset.head.manifest
    if oid is None:
        return []
    manifest = local_manifest(asset, oid)
    if manifest is None:
        raise MissingObject(oid, f"the asset store (the manifest of {asset.head.name} "
                                 f"{asset.head.version})")
    return list(manifest.inputs)


def is_staged(asset: Asset) -> bool:
    """Whether ``.ama/inputs`` exists, i.e. the inputs were changed since the last upload."""
    return inputs_path(asset).is_file()


def staged(asset: Asset) -> list[Input]:
    """Return the inputs the next upload of ``asset`` records, sorted by name.

    Raises :class:`CorruptInputs` for a damaged ``.ama/inputs`` and :class:`MissingObject`
    when the file is absent and the manifest of the version held is not in the store.
    """
    path = inputs_path(asset)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return recorded(asset)
    return _deserialize(data, path)


def _deserialize(data: bytes, path: Path) -> list[Input]:
    hint = f"remove {path} to start again from the inputs of the version held"
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != INPUTS_FORMAT:
            raise ValueError(f"it is not an {INPUTS_FORMAT} object")
        items = doc["inputs"]
        if not isinstance(items, list):
            raise ValueError("'inputs' is not a list")
        found = [Input(str(i["manifest"]), str(i["name"]), str(i["label"])) for i in items]
    except (ValueError, KeyError, TypeError, InvalidObject) as e:
        raise CorruptInputs(f"{path} is damaged: {e}", hint) from None
    return sorted(found, key=lambda i: i.name)


def write_staged(asset: Asset, inputs: list[Input]) -> None:
    """Replace ``.ama/inputs`` with ``inputs`` (sorted by name) atomically."""
    path = inputs_path(asset)
    items = sorted(inputs, key=lambda i: i.name)
    data = canonical_json({"format": INPUTS_FORMAT,
                           "inputs": [i.to_json() for i in items]}) + b"\n"
    write_atomic(path, data)


def reset(asset: Asset) -> None:
    """Forget staged changes to the inputs (after an upload recorded them, or a switch):
    the inputs are again those of the version the directory holds."""
    inputs_path(asset).unlink(missing_ok=True)


@dataclass
class InputChange:
    """What ``ama inputs add`` or ``remove`` did: ``input`` was ``action`` (added,
    relabelled, unchanged, removed); ``inputs`` is the staged list afterwards."""

    action: str
    input: Input
    inputs: list[Input]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "input": self.input.to_json(),
                "inputs": [i.to_json() for i in self.inputs]}


def check_label(label: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise BadInput("an input needs a label saying what it was used for",
                       "pass one, for example --label training-data")
    if "\n" in label or "\r" in label or len(label) > MAX_LABEL:
        raise BadInput(f"invalid label {label[:40]!r}: use one line of at most "
                       f"{MAX_LABEL} characters")
    return label.strip()


def add(asset: Asset, remote: Remote, name: str, label: str) -> InputChange:
    """Stage the version ``name`` (``CLASS/ASSET/VERSION``, ASSET an ordinal or alias;
    without a version, the asset's latest) as an input labelled ``label``.

    The version is looked up on ``remote``, so the input records its manifest id and its
    ordinal name. Adding a staged version again changes its label. Raises
    :class:`BadInput` (a bad name or label) and :class:`NotFound` (no such version), and
    then changes nothing.
    """
    label = check_label(label)
    ref = parse_name(name)
    current = staged(asset)
    version = resolve_version(remote, ref)
    item = Input(version["manifest"], f"{version['name']}/{version['version']}", label)
    if asset.head.manifest is not None and item.manifest == asset.head.manifest:
        raise BadInput(f"{item.name} is the version this directory holds; it cannot be an "
                       "input of its own next version")
    action = "added"
    kept = []
    for old in current:
        if old.name == item.name:
            action = "unchanged" if old.label == item.label else "relabelled"
        elif old.manifest == item.manifest:
            raise BadInput(f"{item.name} has the same manifest as the staged input {old.name}",
                           f"remove it first with 'ama inputs remove {old.name}'")
        else:
            kept.append(old)
    inputs = sorted([*kept, item], key=lambda i: i.name)
    if action != "unchanged" or not is_staged(asset):
        write_staged(asset, inputs)
    return InputChange(action, item, inputs)


def remove(asset: Asset, name: str, remote: Remote | None = None) -> InputChange:
    """Unstage the input ``name`` (``CLASS/ORDINAL/VERSION``; with ``remote``, an alias in
    place of the ordinal is resolved there). Raises :class:`NotAnInput` listing the staged
    inputs, and then changes nothing."""
    ref = parse_name(name, version=True)
    current = staged(asset)
    wanted = str(ref)
    if ref.is_alias:
        if remote is None:
            raise BadInput(f"{name} names an alias; give the ordinal, as 'ama inputs list' "
                           "shows it")
        version = resolve_version(remote, ref)
        wanted = f"{version['name']}/{version['version']}"
    for old in current:
        if old.name == wanted:
            inputs = [i for i in current if i.name != wanted]
            write_staged(asset, inputs)
            return InputChange("removed", old, inputs)
    listed = ", ".join(i.name for i in current) or "none"
    raise NotAnInput(f"{wanted} is not an input of the next upload (staged: {listed})",
                     "see them with 'ama inputs list'")


@dataclass
class Listing:
    """What ``ama inputs list`` shows: the inputs the next upload records, those of the
    version held, and the versions on the remote that name the version held as an input."""

    staged: list[Input]
    recorded: list[Input]
    dependents: list[wire.Dependent] = field(default_factory=list)

    @property
    def added(self) -> list[Input]:
        names = {(i.name, i.label) for i in self.recorded}
        return [i for i in self.staged if (i.name, i.label) not in names]

    @property
    def removed(self) -> list[Input]:
        names = {i.name for i in self.staged}
        return [i for i in self.recorded if i.name not in names]

    def to_json(self) -> dict[str, Any]:
        return {"staged": [i.to_json() for i in self.staged],
                "recorded": [i.to_json() for i in self.recorded],
                "added": [i.to_json() for i in self.added],
                "removed": [i.to_json() for i in self.removed],
                "dependents": [{"name": d["name"], "version": d["version"],
                                "manifest": d["manifest"], "label": d.get("label", "")}
                               for d in self.dependents]}


def listing(asset: Asset, remote: Remote | None = None) -> Listing:
    """Return the staged and recorded inputs and, with ``remote`` and an uploaded version,
    its dependents."""
    dependents: list[wire.Dependent] = []
    if remote is not None and asset.head.manifest is not None:
        dependents = remote.transport.dependents(remote.project, asset.head.manifest)
    return Listing(staged(asset), recorded(asset), dependents)
