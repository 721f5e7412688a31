"""Sizes as people read them, in one spelling for every listing, report and page."""

from __future__ import annotations


def human_size(size: int | None) -> str:
    """``size`` bytes in binary units: ``512 B``, ``1.5 KiB``, … ``2.0 TiB``; empty for
    None (a size not known)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
