"""Thumbnails of images, for the offline report and the dashboard's previews alike.

Pillow is an optional extra (``amapy[report]``): :func:`pillow_available` says whether it is
installed, and the callers keep small originals without it. A hostile image cannot make a
thumbnail eat memory: its pixel count is read from its header and checked against
:data:`THUMBNAIL_PIXELS` before anything is decoded.
"""

from __future__ import annotations

import io

THUMBNAIL_SIDE = 256  # pixels on the long side, at most
THUMBNAIL_SOURCE_BYTES = 64 * 1024 * 1024  # larger images are not read for a thumbnail
THUMBNAIL_PIXELS = 40_000_000  # larger images are not decoded


def pillow_available() -> bool:
    """Whether the report can make thumbnails (Pillow is an optional extra)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


def thumbnail(data: bytes, mime: str) -> tuple[str, bytes] | str:
    """Return (mime, bytes) of ``data`` scaled to at most :data:`THUMBNAIL_SIDE` pixels on
    its long side, or why it cannot be. Needs Pillow."""
    import warnings

    from PIL import Image

    try:
        # Opening reads the header only: the pixel count is checked before any decoding,
        # below Pillow's own decompression-bomb limit, which only warns below twice its value
        # (made an error here, so that no such image is ever decoded).
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width * height > THUMBNAIL_PIXELS:
                return (f"{width}×{height} pixels, more than the {THUMBNAIL_PIXELS:,} "
                        "a thumbnail decodes")
            image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))  # JPEG decodes scaled down
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            out = io.BytesIO()
            if mime == "image/jpeg" and image.mode in ("RGB", "L"):
                image.save(out, "JPEG", quality=85)
                return "image/jpeg", out.getvalue()
            small: Image.Image = image
            if small.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                small = small.convert("RGBA")
            small.save(out, "PNG", optimize=True)
            return "image/png", out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"more than the {THUMBNAIL_PIXELS:,} pixels a thumbnail decodes"
    except (OSError, ValueError, SyntaxError) as error:
        return f"an image Pillow cannot read ({type(error).__name__})"
