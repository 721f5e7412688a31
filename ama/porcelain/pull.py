"""``ama pull``: bring the asset directory to the latest version its remote has.

It is ``ama switch`` to the version the remote lists last, asked now: only the files that
differ are fetched and placed, and files changed here and not uploaded are never
overwritten unless ``force``.
"""

from __future__ import annotations

from collections.abc import Callable

from ama.porcelain.asset import Asset
from ama.porcelain.switch import SwitchResult, switch
from ama.porcelain.versions import latest_version

Progress = Callable[[int, int], None]


def pull(asset: Asset, *, force: bool = False, progress: Progress | None = None
         ) -> SwitchResult:
    """Switch ``asset``'s directory to the latest version of its asset on the remote.

    Returns what the switch did (``old == new`` when it was there already). Raises
    NotUploaded (a temp asset), :class:`~ama.porcelain.switch.LocalChanges` (without
    ``force``), and the transport's errors.
    """
    return switch(asset, latest_version(asset), force=force, progress=progress)
