"""The page of ``ama report`` for a large version: it lists what a browser can show and
says what it left out; and how the file tree chooses what to list."""

from __future__ import annotations

import re

from ama.plumbing.store import Store
from ama.porcelain.config import Config
from ama.porcelain.info import connect, parse_name
from ama.porcelain.report import Folder, file_tree, render, report
from tests.unit.porcelain.published import publish

# The page of a version of 100,000 files stays under this (it is about 320 KiB).
MAX_PAGE_BYTES = 512 * 1024


def listed(folder: Folder) -> list[str]:
    return [f.path for f in folder.files] + [p for sub in folder.folders for p in listed(sub)]


def test_a_version_of_100_000_files_gives_a_page_a_browser_opens() -> None:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "big")
    # One blob under 100,000 names: the trees are what is large, and they are quick to write.
    files = {f"d{i:03}": {f"f{j:04}.bin": b"x" for j in range(1000)} for i in range(100)}
    version = publish(remote.transport, remote.project, "big", files)
    page = report(remote, parse_name("big/1/0.0.0"), Store.open().objects)
    text = render(page)

    assert len(text.encode()) < MAX_PAGE_BYTES
    assert (page.root.count, page.root.size, page.listed_files) == (100_000, 100_000, 2000)
    # Every folder is listed with its count; each shows 20 of its files and says so.
    assert text.count("1000 files, 1000 B</span></summary>") == 100
    assert text.count("980 more files in d") == 100
    assert f"List every file with <code>ama ls-tree -r {version['tree']}</code>" in text
    assert len(re.findall(r'<span class="id">', text)) == 2000


def test_the_tree_lists_breadth_first_within_its_limits() -> None:
    rows = [(f"top{i}.txt", "a" * 64, 1, "blob") for i in range(30)]
    rows += [(f"a/b/c/deep{i}.txt", "b" * 64, 2, "blob") for i in range(30)]
    rows += [(f"s{i}/x.txt", "c" * 64, 3, "exec") for i in range(8)]
    root = file_tree(rows, listed_files=40, listed_folders=5, folder_files=25)

    assert (root.count, root.size) == (68, 30 + 60 + 24)
    # The root's 25 files first, then the first 5 of its 9 folders; the rest is counted.
    assert len(root.files) == 25 and root.hidden_files == 5
    assert [f.name for f in root.folders] == ["a", "s0", "s1", "s2", "s3"]
    assert (root.hidden_folders, root.hidden_below) == (4, 4)
    a = root.folders[0]
    assert (a.count, a.size, a.folders, a.hidden_folders) == (30, 60, [], 1)
    # The 15 files left are shared out over the five folders of the next level.
    assert [len(f.files) for f in root.folders[1:]] == [1, 1, 1, 1]
    assert len(listed(root)) == 29


def test_visualisation_rules_pick_the_previews_in_order() -> None:
    from ama.porcelain.report import FileRow, _plan

    items = [FileRow(p.rsplit("/", 1)[-1], p, "a" * 64, 10, "blob")
             for p in ("a.csv", "img/x.png", "y.png", "n.json", "m.md", "z.bin")]
    mapping = {"*.csv": {"viewer": "table", "options": {"rows": 5}}, "img/*.png": "image",
               "*.json": "json", "*.md": "markdown", "*.bin": "pdf", "[": "text"}
    chosen = [(f.path, show, rows) for f, show, rows in _plan(mapping, items)]
    assert chosen == [("a.csv", "table", 5), ("img/x.png", "image", 20),
                      ("n.json", "text", 20), ("m.md", "text", 20)]
    assert _plan(None, items) == [] and _plan(["*.csv"], items) == []


def test_previews_skip_what_they_cannot_show_and_say_why() -> None:
    from ama.porcelain.report import PREVIEW_BYTES

    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml", visualisation={
        "*.png": "image", "*.csv": "table", "*.txt": "text"})
    big = b"a,b\n" + b"1,2\n" * (PREVIEW_BYTES // 4)
    publish(remote.transport, remote.project, "ml",
            {"fake.png": b"<svg onload=alert(1)>", "big.csv": big, "notes.txt": b"x" * 20_000})
    page = report(remote, parse_name("ml/1"), Store.open().objects)
    shown = {p.path: p for p in page.previews}
    assert (shown["fake.png"].show, shown["fake.png"].note) == (
        "skipped", "not a PNG, JPEG, GIF or WebP image")
    assert (shown["big.csv"].show, shown["big.csv"].note) == (
        "skipped", "larger than the 8,192 KiB a preview reads")
    # The head of a long text, cut and said to be.
    assert shown["notes.txt"].text == "x" * 16 * 1024 and shown["notes.txt"].truncated
    text = render(page)
    assert "no preview: not a PNG" in text and "<svg onload" not in text
    assert "<img" not in text


def _image_bytes(size: tuple[int, int], kind: str = "PNG") -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    # Noise, so that the file is as large as a photograph of that size, not a few KiB.
    Image.effect_noise(size, 64).convert("RGB").save(out, kind)
    return out.getvalue()


def _decoded(uri: str) -> tuple[str, tuple[int, int], int]:
    import base64
    import io

    from PIL import Image

    head, data = uri.split(",", 1)
    raw = base64.b64decode(data)
    with Image.open(io.BytesIO(raw)) as image:
        return head, image.size, len(raw)


def test_large_images_are_embedded_as_thumbnails() -> None:
    from ama.plumbing.thumbnails import THUMBNAIL_SIDE
    from ama.porcelain.report import IMAGE_BYTES

    photo = _image_bytes((4000, 3000))
    assert len(photo) > IMAGE_BYTES  # so large that the page used to leave it out
    snapshot = _image_bytes((1200, 1600), "JPEG")
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml", visualisation={"*": "image"})
    publish(remote.transport, remote.project, "ml",
            {"big.png": photo, "tall.jpg": snapshot, "icon.png": _image_bytes((20, 10))})
    page = report(remote, parse_name("ml/1"), Store.open().objects)
    shown = {p.path: p for p in page.previews}
    assert page.thumbnails and all(p.show == "image" for p in page.previews)

    assert _decoded(shown["big.png"].data_uri)[:2] == (
        "data:image/png;base64", (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 3 // 4))
    assert _decoded(shown["tall.jpg"].data_uri)[:2] == (
        "data:image/jpeg;base64", (THUMBNAIL_SIDE * 3 // 4, THUMBNAIL_SIDE))
    assert _decoded(shown["icon.png"].data_uri)[1] == (20, 10)  # never scaled up
    # The page holds the thumbnails, not the originals: each at most a raw RGB thumbnail,
    # and nothing else of the images.
    text = render(page)
    thumbnails = [_decoded(p.data_uri)[2] for p in page.previews]
    assert all(size <= THUMBNAIL_SIDE * THUMBNAIL_SIDE * 3 for size in thumbnails)
    without_images = len(re.sub(r'src="data:[^"]*"', 'src=""', text).encode())
    assert len(text.encode()) == without_images + sum(len(p.data_uri) for p in page.previews)
    assert len(text.encode()) < len(photo) // 10
    assert "install Pillow" not in text


def test_broken_and_hostile_images_are_skipped_not_decoded() -> None:
    import struct
    import zlib

    from ama.plumbing.thumbnails import THUMBNAIL_PIXELS

    def png_header(width: int, height: int) -> bytes:
        # A valid PNG header claiming a huge image, with a few bytes of pixels after it:
        # decoding it would allocate width × height × 3 bytes.
        def chunk(kind: bytes, data: bytes) -> bytes:
            return (struct.pack(">I", len(data)) + kind + data
                    + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))

    side = int(THUMBNAIL_PIXELS ** 0.5) + 1  # just over the limit, under Pillow's own
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml", visualisation={"*": "image"})
    publish(remote.transport, remote.project, "ml", {
        "bomb.png": png_header(side, side), "huge.png": png_header(100_000, 100_000),
        "cut.png": _image_bytes((300, 200))[:400], "text.png": b"\x89PNG\r\n\x1a\nnot really"})
    page = report(remote, parse_name("ml/1"), Store.open().objects)
    shown = {p.path: (p.show, p.note) for p in page.previews}
    assert shown["bomb.png"] == ("skipped", f"{side}×{side} pixels, more than the "
                                            f"{THUMBNAIL_PIXELS:,} a thumbnail decodes")
    assert shown["huge.png"] == ("skipped", f"more than the {THUMBNAIL_PIXELS:,} pixels a "
                                            "thumbnail decodes")
    assert shown["cut.png"][0] == shown["text.png"][0] == "skipped"
    assert all(note.startswith("an image Pillow cannot read")
               for path, (_, note) in shown.items() if path in ("cut.png", "text.png"))
    text = render(page)
    assert "<img" not in text and "no preview: an image Pillow cannot read" in text


def test_without_pillow_the_page_says_so_and_keeps_only_small_images() -> None:
    import base64
    import subprocess
    import sys

    from ama.porcelain.report import IMAGE_BYTES

    photo, icon = _image_bytes((4000, 3000)), _image_bytes((20, 10))
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml", visualisation={"*": "image"})
    publish(remote.transport, remote.project, "ml", {"big.png": photo, "icon.png": icon})
    # A Python where Pillow cannot be imported, as where the report extra is not installed.
    script = (
        "import sys; sys.modules['PIL'] = None\n"
        "from ama.plumbing.store import Store\n"
        "from ama.porcelain.config import Config\n"
        "from ama.porcelain.info import connect, parse_name\n"
        "from ama.porcelain.report import render, report\n"
        "page = report(connect(Config.open()), parse_name('ml/1'), Store.open().objects)\n"
        "sys.stdout.write(render(page))\n")
    text = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                          text=True).stdout
    assert "install Pillow (<code>pip install 'amapy[report]'</code>)" in text
    assert f"larger than the {IMAGE_BYTES // 1024:,} KiB a preview reads" in text
    images = re.findall(r'<img src="([^"]*)"', text)
    assert images == [f"data:image/png;base64,{base64.b64encode(icon).decode()}"]
