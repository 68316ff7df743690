"""A child process for the reliability tests: enrols and removes subjects, reporting each commit.

The tests fork it (:func:`main` with a pipe as ``out``); it also runs as a script:
``python crash_child.py URL GALLERY NAME MODE COUNT``. ``MODE`` is ``loop``
(run until killed, back to back) or ``count`` (``COUNT`` operations, every third
removing one of its own subjects, with short pauses between them, then exit).
After each commit it prints ``E <ref>`` or ``R <ref>`` and flushes, so the parent
knows exactly what was acknowledged. Every enrollment adds
a subject, two templates and a ledger entry in one transaction; every removal a
deletion and a ledger entry.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from typing import TextIO

import numpy as np

from faceledger.store import GallerySettings, NewTemplate, open_store

MODEL, DIM = "sface-2021dec-int8bq", 128


def vectors_of(ref: str) -> np.ndarray:
    """The two templates of ``ref`` (deterministic, so the parent can recompute them)."""
    seed = int(hashlib.sha256(ref.encode()).hexdigest()[:12], 16)
    v = np.random.default_rng(seed).standard_normal((2, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def enroll(store, gallery: str, ref: str, out: TextIO) -> None:  # noqa: ANN001
    with store.transaction() as tx:
        s = tx.add_subject(gallery, ref)
        for i, v in enumerate(vectors_of(ref)):
            tx.add_template(s.id, NewTemplate(v, MODEL, hashlib.sha256(f"{ref}/{i}".encode()).hexdigest()))
        tx.append_ledger({"op": "enroll", "ref": ref, "subject_id": s.id})
    print("E", ref, file=out, flush=True)


def remove(store, gallery: str, ref: str, out: TextIO) -> None:  # noqa: ANN001
    with store.transaction() as tx:
        s = tx.find_subject(gallery, ref)
        tx.remove_subject(s.id)
        tx.append_ledger({"op": "remove", "ref": ref, "subject_id": s.id})
    print("R", ref, file=out, flush=True)


def main(url: str, gallery: str, name: str, mode: str, count: int, out: TextIO = sys.stdout) -> None:
    store = open_store(url)
    try:
        with store.transaction() as tx:
            tx.create_gallery(gallery, GallerySettings(MODEL, DIM))
    except Exception:  # noqa: BLE001 - another process created it first
        pass
    rng = random.Random(name)
    mine: list[str] = []
    print("READY", file=out, flush=True)
    i = 0
    while mode == "loop" or i < count:
        if mine and (rng.random() < 0.3 if mode == "loop" else i % 3 == 2):
            remove(store, gallery, mine.pop(rng.randrange(len(mine))), out)
        else:
            ref = f"{name}-{i}"
            enroll(store, gallery, ref, out)
            mine.append(ref)
        i += 1
        if mode == "count":  # the time a real enrollment spends on the photo, between transactions
            time.sleep(rng.uniform(0.0, 0.01))
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
