"""The child of the full-filesystem test: ``python disk_full_child.py MOUNT LFW [LEAVE_KB]``.

Runs inside a private mount namespace where MOUNT is a small tmpfs (see test_disk_full.py). It
puts a SQLite store on it, fills the filesystem with another file until the kernel says ENOSPC,
gives back LEAVE_KB (so some writes still fit), runs every kind of write in turn until each is
refused, checks the store, frees the space, runs each kind once more, and prints one JSON line
with what happened.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diskfull_work import KINDS, Workload, acknowledged_match, until_refused  # noqa: E402

MAX_ATTEMPTS = 60


def fill(path: Path) -> int:
    """Write ``path`` until the filesystem is full; the bytes written."""
    written, chunk = 0, b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]   # fill the last blocks too


def main(mount: Path, lfw: Path, leave_kb: int = 0) -> dict:
    w = Workload.open(f"sqlite://{mount / 'fl.db'}", lfw)
    w.setup(consents=MAX_ATTEMPTS)
    before = w.audit()
    filler = mount / "filler"
    size = fill(filler)
    os.truncate(filler, max(0, size - leave_kb * 1024))
    outcomes = until_refused(w, MAX_ATTEMPTS)
    errors = sum(seen[-1] == "storage_full" for seen in outcomes.values())
    full, ok_full = w.audit(), Counter(w.ok)
    integrity = w.engine.store._db.execute("PRAGMA integrity_check").fetchone()[0]
    filler.unlink()
    after_free = {kind: w.attempt(kind) for kind in KINDS}
    after = w.audit()
    w.engine.close()
    return {"outcomes": outcomes, "disk_full_errors": errors, "integrity": integrity, "after_free": after_free,
            "problems_full": acknowledged_match(before, full, ok_full),
            "problems_after": acknowledged_match(before, after, w.ok)}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0)))
