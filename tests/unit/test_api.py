"""The Python API (``import ama``) and the ``ama://`` fsspec filesystem, on the embedded
file:// remote: versions read file by file into a cold asset store, never cloned."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ama
from ama.plumbing.hashing import hash_bytes
from ama.porcelain.alias import add_alias
from ama.porcelain.info import AssetRef
from tests.unit.porcelain.conftest import rewrite_stored

CSV1 = b"a,b\n1,2\n3,4\n"
CSV2 = b"a,b\n1,2\n3,4\n5,6\n"
BIG = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def published(tmp_path: Path) -> tuple[ama.Client, list[ama.Version]]:
    """ml-models/1 with two versions uploaded from an asset directory through the API."""
    writer = ama.Client()
    writer.create_class("ml-models")
    root = tmp_path / "asset"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_bytes(CSV1)
    (root / "data" / "big.bin").write_bytes(BIG)
    (root / "readme.txt").write_text("hello\n")
    table = pa.table({"x": [1, 2, 3], "y": ["p", "q", "r"]})
    pq.write_table(table, root / "data" / "t.parquet")
    local = writer.create("ml-models", root)
    first = local.upload("first", metadata={"accuracy": 0.9})
    (root / "data" / "train.csv").write_bytes(CSV2)
    assert local.add("data") == ["data/train.csv"]
    second = local.upload("second")
    return writer, [first, second]


def cold_client(tmp_path: Path, writer: ama.Client, **kwargs: object) -> ama.Client:
    """A client with an empty asset store of its own, on the writer's remote."""
    url = (Path(writer.environ["AMA_HOME"]) / "remote").as_uri()
    return ama.Client(remote=url, home=tmp_path / "cold", **kwargs)  # type: ignore[arg-type]


def test_a_version_reports_its_record_and_manifest(published) -> None:
    _, (first, second) = published
    v = ama.version("ml-models/1/0.0.0")
    assert (v.name, v.version, v.manifest, v.tree_id) == \
        ("ml-models/1", "0.0.0", first.manifest, first.tree_id)
    assert v.metadata == {"accuracy": 0.9}
    assert v.message == "first"
    assert v.inputs == []
    assert v.created.endswith("Z")
    assert v.size == len(CSV1) + len(BIG) + len("hello\n") + v.entry("data/t.parquet").size
    latest = ama.version("ml-models/1")
    assert latest.version == "0.0.1" and latest.manifest == second.manifest
    assert ama.version("ml-models/1", "0.0.0").manifest == first.manifest


def test_files_lists_paths_sizes_and_ids_and_fetches_no_file_bytes(published,
                                                                   tmp_path: Path) -> None:
    writer, _ = published
    client = cold_client(tmp_path, writer)
    v = client.version("ml-models/1/0.0.0")
    files = list(v.files("data/*.csv"))
    assert [(f.path, f.size, f.id) for f in files] == \
        [("data/train.csv", len(CSV1), hash_bytes(CSV1))]
    assert [f.path for f in v.files()] == \
        ["data/big.bin", "data/t.parquet", "data/train.csv", "readme.txt"]
    assert client.blobs_fetched == 0
    assert not client.store.objects.has(hash_bytes(CSV1))


def test_open_fetches_just_that_object_into_a_cold_store(published, tmp_path: Path) -> None:
    writer, _ = published
    client = cold_client(tmp_path, writer)
    v = client.version("ml-models/1/0.0.1")
    with v.open("data/train.csv") as fh:
        assert fh.read() == CSV2
    assert client.blobs_fetched == 1
    assert client.store.objects.has(hash_bytes(CSV2))
    assert not client.store.objects.has(hash_bytes(BIG))
    # The root tree, data/ and the file: nothing else.
    assert client.objects_fetched == 3


def test_a_ranged_read_does_not_fetch_the_object(published, tmp_path: Path) -> None:
    writer, _ = published
    client = cold_client(tmp_path, writer)
    v = client.version("ml-models/1")
    assert v.read_range("data/big.bin", 1000, 300) == BIG[1000:1300]
    assert v.read_range("data/big.bin", len(BIG) - 10, 300) == BIG[-10:]
    assert v.read_range("data/big.bin", len(BIG) + 5, 3) == b""
    assert client.blobs_fetched == 0
    assert not client.store.objects.has(hash_bytes(BIG))
    assert v.read_bytes("data/big.bin") == BIG
    assert client.blobs_fetched == 1


def test_errors_are_the_clis_typed_errors_with_exit_codes(published) -> None:
    v = ama.version("ml-models/1")
    with pytest.raises(ama.NotFound) as missing:
        v.open("data/nope.csv")
    assert missing.value.exit_code == 3 and "data/nope.csv" in str(missing.value)
    with pytest.raises(ama.IsADirectory):
        v.open("data")
    with pytest.raises(ama.NotFound):
        ama.version("ml-models/1/9.9.9")
    with pytest.raises(ama.BadInput) as bad:
        ama.version("not a name")
    assert bad.value.exit_code == 2


def test_reads_from_many_threads_share_one_client(published, tmp_path: Path) -> None:
    writer, _ = published
    client = cold_client(tmp_path, writer)
    v = client.version("ml-models/1")
    paths = ["data/train.csv", "data/big.bin", "readme.txt"] * 8
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(v.read_bytes, paths))
    assert got == [CSV2, BIG, b"hello\n"] * 8
    assert client.blobs_fetched == 3


def test_checkout_clones_the_version_into_a_folder(published, tmp_path: Path) -> None:
    v = ama.version("ml-models/1/0.0.0")
    local = v.checkout(tmp_path / "co")
    assert (tmp_path / "co" / "data" / "train.csv").read_bytes() == CSV1
    assert local.root == tmp_path / "co"


def test_find_by_alias_file_blob_and_hash_and_list_assets(published, tmp_path: Path) -> None:
    writer, (first, second) = published
    add_alias(ama.client().remote, AssetRef("ml-models", "1"), "resnet-best")
    assert [str(v) for v in ama.find(alias="resnet-best")] == ["ml-models/1/0.0.1"]
    probe = tmp_path / "probe.csv"
    probe.write_bytes(CSV1)
    assert [str(v) for v in ama.find(file=probe)] == ["ml-models/1/0.0.0"]
    assert [str(v) for v in ama.find(file=hash_bytes(CSV2))] == ["ml-models/1/0.0.1"]
    assert [v.manifest for v in ama.find(hash=first.tree_id)] == [first.manifest]
    [summary] = ama.assets("ml-models")
    assert (summary.name, summary.latest, summary.versions) == ("ml-models/1", "0.0.1", 2)
    with pytest.raises(ama.BadInput):
        ama.find()


def test_pandas_and_pyarrow_read_through_ama_urls(published, tmp_path: Path) -> None:
    frame = pd.read_csv("ama://ml-models/1@0.0.0/data/train.csv")
    assert frame.to_dict("list") == {"a": [1, 3], "b": [2, 4]}
    assert len(pd.read_csv("ama://ml-models/1/data/train.csv")) == 3
    # pyarrow resolves URIs of its own filesystems only: it is given the fsspec one.
    table = pq.read_table("ama://ml-models/1/data/t.parquet", filesystem=fsspec.filesystem("ama"))
    assert table.to_pydict() == {"x": [1, 2, 3], "y": ["p", "q", "r"]}
    assert pd.read_parquet("ama://ml-models/1/data/t.parquet").to_dict("list") == \
        {"x": [1, 2, 3], "y": ["p", "q", "r"]}
    opened = fsspec.open_files("ama://ml-models/1/data/*.csv")
    assert [f.path for f in opened] == ["ml-models/1/data/train.csv"]
    with opened[0] as fh:
        assert fh.read() == CSV2


def test_the_filesystem_lists_walks_globs_and_reads(published) -> None:
    fs = fsspec.filesystem("ama")
    assert fs.ls("ama://ml-models/1@0.0.0", detail=False) == \
        ["ml-models/1@0.0.0/data", "ml-models/1@0.0.0/readme.txt"]
    info = fs.info("ml-models/1@0.0.0/data/train.csv")
    assert (info["type"], info["size"], info["id"]) == ("file", len(CSV1), hash_bytes(CSV1))
    assert fs.info("ml-models/1/data")["type"] == "directory"
    assert fs.glob("ama://ml-models/1/**/*.csv") == ["ml-models/1/data/train.csv"]
    assert fs.find("ml-models/1") == ["ml-models/1/data/big.bin", "ml-models/1/data/t.parquet",
                                      "ml-models/1/data/train.csv", "ml-models/1/readme.txt"]
    assert [(d, sorted(f)) for d, _, f in fs.walk("ml-models/1")] == [
        ("ml-models/1", ["readme.txt"]),
        ("ml-models/1/data", ["big.bin", "t.parquet", "train.csv"])]
    assert fs.cat("ama://ml-models/1@0.0.0/data/train.csv") == CSV1
    assert fs.cat_file("ml-models/1/data/big.bin", start=10, end=20) == BIG[10:20]
    assert not fs.exists("ml-models/1/missing")
    with pytest.raises(FileNotFoundError):
        fs.info("ml-models/1/missing")
    with pytest.raises(PermissionError):
        fs.open("ml-models/1/new.txt", "wb")


def test_a_ranged_read_of_a_small_file_reads_its_range_of_the_pack(published,
                                                                   tmp_path: Path) -> None:
    writer, _ = published
    client = cold_client(tmp_path, writer)
    assert client.version("ml-models/1").read_range("data/train.csv", 2, 5) == CSV2[2:7]
    assert not client.store.objects.has(hash_bytes(CSV2))


def test_a_large_file_is_read_in_ranges_and_a_whole_read_is_verified(published,
                                                                     tmp_path: Path) -> None:
    writer, _ = published
    client = cold_client(tmp_path, writer)
    fs = fsspec.filesystem("ama", client=client, whole_below=1024, skip_instance_cache=True)
    with fs.open("ml-models/1/data/big.bin", block_size=4096) as fh:
        fh.seek(500_000)
        assert fh.read(100) == BIG[500_000:500_100]
    assert client.blobs_fetched == 0
    with fs.open("ml-models/1/data/big.bin") as fh:
        assert fh.read() == BIG
    assert client.blobs_fetched == 1


def test_an_alias_url_names_the_asset_in_whatever_class(published) -> None:
    add_alias(ama.client().remote, AssetRef("ml-models", "1"), "resnet-best")
    fs = fsspec.filesystem("ama", skip_instance_cache=True)
    assert fs.cat("ama://alias:resnet-best@0.0.0/data/train.csv") == CSV1
    assert fs.cat("ama://ml-models/resnet-best/data/train.csv") == CSV2


def test_import_ama_loads_neither_the_porcelain_nor_heavy_libraries() -> None:
    code = ("import sys, ama; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('rich', 'requests', 'sqlalchemy', 'fsspec', 'click') or "
            "m.startswith(('ama.porcelain', 'ama.api', 'ama_remote'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.strip()
    assert out == "[]"
    assert "Version" in dir(ama)


def test_a_file_whose_stored_bytes_changed_is_refused_and_never_returned(
        published, tmp_path: Path) -> None:
    writer, _ = published
    rewrite_stored(Path(writer.environ["AMA_HOME"]) / "remote" / "storage", hash_bytes(CSV2),
                   lambda data: data.replace(b"5", b"7"))
    client = cold_client(tmp_path, writer)
    v = client.version("ml-models/1")
    with pytest.raises(ama.AmaError) as refused:
        v.open("data/train.csv")
    assert hash_bytes(CSV2) in str(refused.value)
    assert not client.store.objects.has(hash_bytes(CSV2))
    with pytest.raises(ama.AmaError):
        fsspec.filesystem("ama", client=client, skip_instance_cache=True).cat(
            "ml-models/1/data/train.csv")


def test_progress_goes_to_the_callback_and_nothing_is_printed(
        published, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    writer, _ = published
    seen: list[tuple[int, int]] = []
    client = cold_client(tmp_path, writer, progress=lambda done, total: seen.append((done, total)))
    capsys.readouterr()
    assert client.version("ml-models/1").read_bytes("data/big.bin") == BIG
    assert seen and seen[-1] == (1, 1)
    assert capsys.readouterr() == ("", "")


def test_a_range_of_an_object_larger_than_the_remotes_read_chunk(tmp_path: Path) -> None:
    # Over 1 MiB the remote streams an object while hashing it; a range starts mid-way.
    huge = bytes(range(251)) * 20_000  # 5,020,000 bytes
    writer = ama.Client()
    writer.create_class("blobs")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "huge.bin").write_bytes(huge)
    writer.create("blobs", tmp_path / "h").upload("huge")
    client = cold_client(tmp_path, writer)
    v = client.version("blobs/1")
    assert v.read_range("huge.bin", 4_000_000, 1_500_000) == huge[4_000_000:]
    assert v.read_range("huge.bin", 7, 2_000_000) == huge[7:2_000_007]
    assert client.blobs_fetched == 0
    assert v.read_bytes("huge.bin") == huge


def test_the_notebook_bar_shows_the_steps_the_cli_shows(tmp_path: Path) -> None:
    """The bar a notebook draws names the same steps as the CLI's (writing the trees, asking
    the remote, the packing's count, the remote storing the packs, the commit), in order."""
    import io
    import re

    from ama.api import _Bar
    from ama.porcelain.upload import upload

    writer = ama.Client()
    writer.create_class("ml-models")
    root = tmp_path / "asset"
    root.mkdir()
    for i in range(600):
        (root / f"f{i:03d}.txt").write_text(f"file {i}\n")
    local = writer.create("ml-models", root)
    drawn = io.StringIO()
    upload(local._open(), "first", progress=_Bar("uploading", drawn))
    lines = [line.strip() for line in re.split(r"[\r\n]+", drawn.getvalue()) if line.strip()]

    def first(pattern: str) -> int:
        found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert found, (pattern, lines)
        return found[0]

    # 600 files, their tree and the manifest; packed 256 at a time.
    steps = [first("uploading: writing trees"), first("uploading: asking the remote what it lacks"),
             first(r"^uploading: +[0-9]+%.* 256/602"), first("uploading: remote storing packs"),
             first("uploading: committing")]
    assert steps == sorted(steps), lines
