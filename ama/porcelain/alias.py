"""Human names for assets (``ama alias add|remove``): ``<class>/<alias>`` names one asset of
the class until it is moved or removed; every change is audited by the remote."""

from __future__ import annotations

import re
from typing import TypedDict

from ama.plumbing import wire
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.head import TEMP_PREFIX
from ama.plumbing.objects import CLASS_NAME_RE
from ama.plumbing.transport import ANY_TARGET, _AnyTarget
from ama.porcelain.info import AssetRef, Remote

_DIGITS = re.compile(r"[0-9]+\Z")


def check_alias(alias: str) -> str:
    """Return ``alias`` if it can name an asset (docs/design.md §1), else raise
    :class:`BadInput`."""
    if not CLASS_NAME_RE.match(alias):
        raise BadInput(f"invalid alias {alias!r}: use 1 to 63 of a-z, 0-9, '.', '_', '-', "
                       "starting with a letter or digit")
    if _DIGITS.match(alias):
        raise BadInput(f"invalid alias {alias!r}: an alias is never all digits (those are "
                       "ordinals)")
    if alias.startswith(TEMP_PREFIX):
        raise BadInput(f"invalid alias {alias!r}: an alias never starts with {TEMP_PREFIX!r}")
    return alias


class MovedAlias(wire.AliasRecord):
    """An alias set, and the asset it named before (None if none, or the same)."""

    moved_from: str | None


# An alias removed: its class, its name, and the asset it named.
RemovedAlias = TypedDict("RemovedAlias", {"class": str, "alias": str, "name": str})


def add_alias(remote: Remote, asset: AssetRef, alias: str,
              expect: str | None = None) -> MovedAlias:
    """Point ``<class>/<alias>`` at ``asset`` (moving it from another asset of the class if
    it named one); return ``{"class","alias","ordinal","name","moved_from"}``.

    With ``expect`` (``CLASS/ORDINAL`` or ``ORDINAL`` of the asset the alias must name now,
    or ``none`` for an alias that must not exist yet) the move is a compare-and-swap on the
    remote: if someone moved the alias meanwhile, :class:`Conflict` names where it points.
    """
    check_alias(alias)
    expected: int | None | _AnyTarget = ANY_TARGET
    if expect is not None:
        expected = _expected_ordinal(asset.cls, expect)
    target = remote.transport.asset(remote.project, asset.cls, asset.asset)
    before = remote.transport.find(remote.project, alias=alias, cls=asset.cls)
    moved_from = before[0]["name"] if before and before[0]["name"] != target["name"] else None
    result = remote.transport.put_alias(remote.project, asset.cls, alias,
                                        int(target["ordinal"]), expected)
    return {**result, "moved_from": moved_from}


def _expected_ordinal(cls: str, text: str) -> int | None:
    if text == "none":
        return None
    named_cls, _, ordinal = text.rpartition("/")
    if (named_cls and named_cls != cls) or not ordinal.isdigit() or ordinal.startswith("0"):
        raise BadInput(f"--expect {text!r}: name an asset of {cls} as {cls}/ORDINAL, or 'none' "
                       "for an alias that must not exist yet")
    return int(ordinal)


def remove_alias(remote: Remote, asset: AssetRef, alias: str) -> RemovedAlias:
    """Remove ``<class>/<alias>``, which must name ``asset``; return ``{"class","alias",
    "name"}``. Raises NotFound when the alias does not exist or names another asset."""
    check_alias(alias)
    target = remote.transport.asset(remote.project, asset.cls, asset.asset)
    found = remote.transport.find(remote.project, alias=alias, cls=asset.cls)
    if not found:
        raise NotFound(f"alias {asset.cls}/{alias} not found",
                       f"see the aliases of the class with 'ama list --class {asset.cls}'")
    if found[0]["name"] != target["name"]:
        raise NotFound(f"alias {asset.cls}/{alias} names {found[0]['name']}, not "
                       f"{target['name']}",
                       f"remove it from there with 'ama alias remove {alias} "
                       f"--asset {found[0]['name']}'")
    remote.transport.delete_alias(remote.project, asset.cls, alias)
    return {"class": asset.cls, "alias": alias, "name": target["name"]}
