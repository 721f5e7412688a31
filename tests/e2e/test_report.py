"""``ama report`` through the installed command, on the embedded remote and on a real
ama-server under gunicorn: what the page shows, that everything users wrote is escaped,
and that the page asks for nothing from the network."""

from __future__ import annotations

import html.parser
import json
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_lifecycle import ama, prepare
from tests.services.server import RunningServer

HOSTILE = "<img src=x onerror=alert(1)>.png"
TITLE = "Model </script><script>alert(1)</script>"


def png(width: int, height: int) -> bytes:
    """A small RGB PNG, made by hand (no imaging library is a dependency)."""
    rows = b"".join(b"\x00" + b"".join(bytes([x * 4 % 256, y * 4 % 256, 160])
                                       for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Page(html.parser.HTMLParser):
    """The tags, attributes and text of a page, as a browser's parser splits them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def use_server(tmp_path: Path, server: RunningServer) -> None:
    prepare("remote", "add", "team", server.url, cwd=tmp_path)
    prepare("remote", "default", "team", cwd=tmp_path)
    prepare("auth", "login", "--token", server.token, "--remote", "team", cwd=tmp_path)
    prepare("project", "activate", server.project, cwd=tmp_path)


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_report_of_a_version(where: str, tmp_path: Path,
                             start_ama_server: Callable[..., RunningServer]) -> None:
    if where == "server":
        use_server(tmp_path, start_ama_server())
    ama("class", "init", "imagenet-subsets", cwd=tmp_path)
    ama("class", "init", "ml-models", cwd=tmp_path)
    from ama.porcelain.config import Config
    from ama.porcelain.info import connect

    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models", "Trained models", None, None,
                               {"*.png": "image", "*.csv": {"viewer": "table",
                                                            "options": {"rows": 2}},
                                "*.json": "json"})
    data = tmp_path / "d"
    data.mkdir()
    ama("init", "imagenet-subsets", cwd=data)
    (data / "a.jpg").write_bytes(b"jpeg")
    ama("add", ".", cwd=data)
    ama("upload", "-m", "the data", cwd=data)

    m = tmp_path / "m"
    (m / "data").mkdir(parents=True)
    ama("init", "ml-models", cwd=m)
    (m / "plot.png").write_bytes(png(40, 30))
    (m / HOSTILE).write_bytes(png(4, 4))
    (m / "data" / "train.csv").write_text("x,y,label\n1,2,cat\n3,4,<b>dog</b>\n5,6,eel\n")
    (m / "config.json").write_text('{"lr": 0.1}')
    (m / "run.sh").write_text("#!/bin/sh\n")
    (m / "run.sh").chmod(0o755)
    ama("add", ".", cwd=m)
    ama("inputs", "add", "imagenet-subsets/1/0.0.0", "--label", "training-data", cwd=m)
    (tmp_path / "meta.json").write_text(json.dumps({"accuracy": 0.91,
                                                    "note": "</pre><script>x</script>"}))
    ama("upload", "-m", "first <i>model</i>", "--metadata", str(tmp_path / "meta.json"),
        cwd=m)
    ama("asset", "set", "--title", TITLE, "--description", "Trained & tested", "--tag", "vision",
        cwd=m)

    written = ama("report", cwd=m).stdout.strip()
    assert written == "ml-models-1-0.0.0.html"
    text = (m / written).read_text(encoding="utf-8")
    # The same page on stdout, by name or as the asset's latest (but for the time it was made).
    before_footer = text[:text.index("<footer>")]
    for name in ("ml-models/1/0.0.0", "ml-models/1"):
        assert ama("report", name, "-o", "-", cwd=tmp_path).stdout.startswith(before_footer)
    page = Page(text)
    body = "".join(page.text)

    # What the version is, and what it holds.
    for shown in (TITLE, "ml-models/1/0.0.0", "Trained & tested", "vision",
                  "first <i>model</i>", "plot.png", "train.csv", "config.json", HOSTILE,
                  "imagenet-subsets/1/0.0.0", "training-data", '"accuracy": 0.91',
                  '"note": "</pre><script>x</script>"', "(executable)", "Test User"):
        assert shown in body, shown
    files = ama("ls-tree", "-r", "HEAD", cwd=m).stdout.splitlines()
    for line in files:
        _kind, oid, size = line.split("\t")[0].split(" ")
        assert oid in body  # every file's id
    # The previews the class's rules ask for: two images, the CSV's header and 2 rows, JSON.
    images = [a["src"] for tag, a in page.tags if tag == "img"]
    assert len(images) == 2 and all(s and s.startswith("data:image/png;base64,")
                                    for s in images)
    table = re.search(r'<table>\s*<tr><th>x</th><th>y</th><th>label</th></tr>(.*?)</table>',
                      text, re.S)
    assert table is not None
    assert "&lt;b&gt;dog&lt;/b&gt;" in table.group(1) and "eel" not in table.group(1)
    assert '"lr": 0.1' in body

    # The input's page names this version among those made from it.
    made_from = ama("report", "imagenet-subsets/1/0.0.0", "-o", "-", cwd=tmp_path).stdout
    assert "<tr><td>ml-models/1/0.0.0</td><td>training-data</td></tr>" in made_from

    # History: every version, with its message, author and date, also from an older one.
    (m / "config.json").write_text('{"lr": 0.2}')
    ama("update", "--all", cwd=m)
    ama("upload", "-m", "second", cwd=m)
    older = ama("report", "ml-models/1/0.0.0", "-o", "-", cwd=tmp_path).stdout
    history = older[older.index('<section id="history">'):]
    rows = [tuple(re.sub(r"<[^>]+>", "", c) for c in row) for row in re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(\d{4}-.*?)</td></tr>", history)]
    assert [r[:3] for r in rows] == [("0.0.1", "second", "Test User"),
                                     ("0.0.0", "first &lt;i&gt;model&lt;/i&gt;", "Test User")]
    assert "(latest is 0.0.1)" in older

    # Everything users wrote is text, never markup.
    assert "<script" not in text and "onerror=alert" not in text.replace(
        "&lt;img src=x onerror=alert(1)&gt;", "")
    assert [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed", "link",
                                             "base", "form")] == []
    assert not [name for _, attrs in page.tags for name in attrs if name.startswith("on")]
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # Nothing from the network: no URL, and a policy that would block one anyway.
    assert not re.search(r"(?i)https?:", text)
    assert all(v.startswith("data:") for _, a in page.tags for k, v in a.items()
               if k in ("src", "href") and v is not None)
    csp = [a["content"] for t, a in page.tags
           if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1 and csp[0] is not None
    assert csp[0].startswith("default-src 'none'; style-src 'sha256-")
    assert "img-src data:;" in csp[0] and "unsafe" not in csp[0]


def test_report_of_a_temp_asset_is_not_found(tmp_path: Path) -> None:
    ama("class", "init", "ml-models", cwd=tmp_path)
    m = tmp_path / "m"
    m.mkdir()
    ama("init", "ml-models", cwd=m)
    done = ama("report", cwd=m, code=3)
    assert "not uploaded yet" in done.stderr and "hint:" in done.stderr
    assert not list(m.glob("*.html"))
