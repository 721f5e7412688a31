"""``.ama/HEAD``: which asset and version an asset directory holds.

The porcelain writes it as one JSON object (canonical: sorted keys, UTF-8, a final newline)::

    {"asset":"temp_3f9a1c2be4d5","class":"ml-models","format":"ama-head/1",
     "manifest":null,"project":"default","remote":"local","version":"temp_"}

``asset`` is the asset's name within its class (``temp_<12 hex>`` until the first upload,
then the ordinal as a string, ``"1"``); ``version`` is ``temp_`` until then, then the version
the directory holds (``0.0.0``); ``manifest`` is that version's manifest id, or null;
``remote`` and ``project`` name where the asset lives (the remote by its configured name).
HEAD is replaced atomically (temp file, fsync, rename).

Plumbing scripts that build trees in a bare ``.ama/`` may instead keep a git-style ref there
(an id, or ``ref: <name>``). :class:`HeadRef` reads either form, so the revision ``HEAD``
always means the manifest the directory holds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.refs import RefStore, _Any
from ama.plumbing.worktree import META_DIR, NotAnAssetDir

HEAD_FORMAT = "ama-head/1"
TEMP_PREFIX = "temp_"
TEMP_VERSION = "temp_"


class CorruptHead(AmaError):
    """``.ama/HEAD`` that is not the JSON ama writes."""


@dataclass(frozen=True)
class Head:
    """Which asset and version an asset directory holds (see the module docstring)."""

    class_name: str
    asset: str
    version: str = TEMP_VERSION
    manifest: str | None = None
    remote: str = "local"
    project: str = "default"

    @property
    def is_temp(self) -> bool:
        return self.asset.startswith(TEMP_PREFIX)

    @property
    def name(self) -> str:
        """The name users type: ``ml-models/1``, or the temp name before the first upload."""
        return self.asset if self.is_temp else f"{self.class_name}/{self.asset}"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["class"] = data.pop("class_name")
        data["format"] = HEAD_FORMAT
        return data

    def serialize(self) -> bytes:
        return (json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def deserialize(cls, data: bytes, where: str = ".ama/HEAD") -> Head:
        try:
            value = json.loads(data)
            if not isinstance(value, dict) or value.get("format") != HEAD_FORMAT:
                raise ValueError(f"it is not an {HEAD_FORMAT} object")
            return cls(class_name=str(value["class"]), asset=str(value["asset"]),
                       version=str(value["version"]), manifest=value["manifest"],
                       remote=str(value["remote"]), project=str(value["project"]))
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptHead(f"{where} is damaged: {e}",
                              "restore it from a backup, or clone the asset again") from None

    @classmethod
    def read(cls, meta: Path) -> Head:
        path = meta / "HEAD"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotAnAssetDir(f"{meta.parent} has {META_DIR}/ but no {META_DIR}/HEAD",
                                "run 'ama init CLASS' there to start an asset") from None
        return cls.deserialize(data, str(path))

    def write(self, meta: Path) -> None:
        write_atomic(meta / "HEAD", self.serialize())


class HeadRef:
    """``.ama/HEAD`` seen as the ref ``HEAD`` (what :mod:`ama.plumbing.revision` reads)."""

    def __init__(self, meta: Path) -> None:
        self.meta = Path(meta)
        self._refs = RefStore(self.meta, prefix="HEAD")

    def _head(self) -> Head | None:
        try:
            data = (self.meta / "HEAD").read_bytes()
        except FileNotFoundError:
            return None
        return Head.deserialize(data, str(self.meta / "HEAD")) if data.startswith(b"{") else None

    def read(self, name: str) -> str | None:
        """Return HEAD's value: the manifest id it holds, or a plumbing ref's raw value."""
        head = self._head()
        if head is None:
            return self._refs.read(name)
        if head.manifest is None:
            raise NotFound(
                f"HEAD names {head.name}, which has no uploaded version yet",
                "upload it with 'ama upload -m MESSAGE'",
            )
        return head.manifest

    def update(self, name: str, new: str, old: str | None | _Any) -> None:
        self.check_movable()
        self._refs.update(name, new, old)

    def delete(self, name: str, old: str | None | _Any) -> None:
        self.check_movable()
        self._refs.delete(name, old)

    def check_movable(self) -> None:
        """Refuse when HEAD is the porcelain's JSON (it names a version, not a bare ref)."""
        head = self._head()
        if head is not None:
            raise BadInput(
                f"HEAD of {self.meta.parent} names the asset {head.name} {head.version}; "
                "update-ref does not move it",
                "move it with 'ama switch --version VERSION'",
            )
