"""The least time the embedded remote's upload and clone of many small files can take on
this machine's disk, whatever the tool: the same file-system work done by a bare loop.

``bench/embedded.py`` runs it in each round, beside ama and DVC, so that a ratio to DVC can
be read against the ratio the disk allows. Two measurements over the ``.bin`` files of a
tree, every file's bytes read into memory before the clock starts:

- ``clone``: what a clone into an empty store must do when the store keeps loose objects
  (one file per object, so that checkouts can hard-link them): write each object into a
  fan-out folder of the store as a temp file renamed into place, hard-link each into a
  work tree of the same folders and names, then sync the file system;
- ``upload``: read each object back from that store (one open and read each, as any upload
  from a store of loose objects), write them end to end into one file, and sync it.

Both run on two threads, as many as the machine has cores. No hashing, no bookkeeping, no
checks: the figures are a floor, not a tool. Prints one line of JSON:
``{"clone": seconds, "upload": seconds, "files": n}``.

    python bench/floor.py TREE WORK
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from hashlib import blake2b
from pathlib import Path

THREADS = 2


def main(tree: Path, work: Path) -> dict[str, float]:
    files = sorted(tree.rglob("*.bin"))
    names = [str(f.relative_to(tree)) for f in files]
    data = [f.read_bytes() for f in files]
    ids = [blake2b(d, digest_size=32).hexdigest() for d in data]
    store, checkout = work / "objects", work / "tree"
    for i in range(256):
        (store / f"{i:02x}").mkdir(parents=True)
    for folder in {os.path.dirname(n) for n in names}:
        (checkout / folder).mkdir(parents=True, exist_ok=True)

    def place(k: int) -> None:
        path = f"{store}/{ids[k][:2]}/{ids[k][2:]}"
        temp = f"{path}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            os.write(fd, data[k])
        finally:
            os.close(fd)
        os.rename(temp, path)
        os.link(path, f"{checkout}/{names[k]}")

    def read(k: int) -> bytes:
        fd = os.open(f"{store}/{ids[k][:2]}/{ids[k][2:]}", os.O_RDONLY)
        try:
            return os.read(fd, len(data[k]))
        finally:
            os.close(fd)

    n = len(files)
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda s: [place(k) for k in range(s, n, THREADS)], range(THREADS)))
    os.sync()
    clone = time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        pieces = list(pool.map(lambda s: [read(k) for k in range(s, n, THREADS)],
                               range(THREADS)))
    with open(work / "pack", "wb") as pack:
        for share in pieces:
            pack.writelines(share)
        pack.flush()
        os.fsync(pack.fileno())
    upload = time.perf_counter() - started
    return {"clone": clone, "upload": upload, "files": n}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]))))
