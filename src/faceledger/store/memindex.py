"""In-memory search over one gallery: an exact float32 matrix, plus an optional HNSW index.

The matrix holds every template of the gallery (row ``i``: template ``tids[i]`` of
subject ``sids[i]``); removal swaps the last row into the hole, so it stays dense.
Exact search is one matrix product (cosine = dot product of unit vectors).

Above ``ann_min`` templates an HNSW graph (:mod:`faceledger.store.ann`) is built
(in a background thread by default; exact search answers until it is ready) and
kept consistent on every add and removal. Changes made while it is being built
are replayed on it before it is used, so it never holds an entry the matrix does
not, and never misses one it does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np

from ._common import rank_subjects
from .ann import AnnIndex, make_ann

__all__ = ["AnnOptions", "GalleryIndex"]


@dataclass(frozen=True)
class AnnOptions:
    """When and how to use an approximate index.

    ``mode``: ``"auto"`` (HNSW from ``min_templates`` up), ``"off"`` (always exact),
    ``"on"`` (HNSW at any size, for tests). ``background``: build in a thread.
    ``m``, ``ef_construction`` and ``ef_search`` were chosen with bench/search_scale.py:
    on a million templates shaped like real ones, ef_search 1024 keeps 97.8% of exact
    search's top answers at a p95 of 6 ms (512: 92.8%, 3 ms); ``mode="off"`` keeps 100%.
    """

    mode: str = "auto"
    min_templates: int = 200_000
    background: bool = True
    library: str = "hnswlib"
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 1024
    threads: int = 0  # 0: every core


def single_thread_blas() -> Callable[[], AbstractContextManager[object]]:
    """A context factory running BLAS on one thread (``threadpoolctl``), or a no-op without it.

    One query is a matrix-vector product: OpenBLAS's threads cost more than they
    bring for it, and on a busy machine they make it ten to a hundred times slower
    (measured: 16 ms instead of 0.1 ms for 5,000 templates under load).
    Concurrent requests, not BLAS threads, should use the cores.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return nullcontext
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=1, user_api="blas")


class GalleryIndex:
    """Templates of one gallery in memory; thread-safe."""

    def __init__(self, dimension: int, options: AnnOptions, version: int = 0) -> None:
        self.dimension = dimension
        self.options = options
        self.version = version  # the gallery's change counter this index reflects
        self._lock = threading.RLock()
        self._vecs = np.zeros((0, dimension), np.float32)
        self._tids = np.zeros(0, np.int64)
        self._sids = np.zeros(0, np.int64)
        self._n = 0
        self._row: dict[int, int] = {}
        self._ann: AnnIndex | None = None
        self._building: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None
        self._builder: threading.Thread | None = None
        self._one_thread = single_thread_blas()

    # -- state -------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def template_ids(self) -> set[int]:
        with self._lock:
            return set(self._row)

    @property
    def ann_ready(self) -> bool:
        return self._ann is not None

    @property
    def ann(self) -> AnnIndex | None:
        """The HNSW index in use (``None``: exact search); set ``ann.ef_search`` to trade speed for recall."""
        return self._ann

    def set_options(self, options: AnnOptions) -> None:
        """Change when and how the HNSW index is used (it is dropped, and rebuilt if wanted)."""
        with self._lock:
            self.options = options
            self._ann = None
        self._maybe_build()

    def subject_of(self, tids: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._sids[[self._row[int(t)] for t in tids]] if len(tids) else np.zeros(0, np.int64)

    # -- changes -----------------------------------------------------------------
    def add(self, tids: np.ndarray, sids: np.ndarray, vecs: np.ndarray) -> None:
        """Add templates (ids not yet present; ``vecs`` unit float32 rows)."""
        tids = np.asarray(tids, np.int64)
        if len(tids) == 0:
            return
        with self._lock:
            fresh = np.array([int(t) not in self._row for t in tids])
            tids, sids, vecs = tids[fresh], np.asarray(sids, np.int64)[fresh], np.asarray(vecs, np.float32)[fresh]
            self._grow(self._n + len(tids))
            end = self._n + len(tids)
            self._vecs[self._n:end], self._tids[self._n:end], self._sids[self._n:end] = vecs, tids, sids
            for i, t in enumerate(tids.tolist()):
                self._row[t] = self._n + i
            self._n = end
            if self._ann is not None:
                self._ann.add(tids, vecs)
            if self._building is not None:
                self._building.append(("add", tids, vecs))
        self._maybe_build()

    def remove(self, tids: np.ndarray) -> None:
        """Remove templates by id (unknown ids are ignored)."""
        with self._lock:
            present = [int(t) for t in tids if int(t) in self._row]
            for t in present:
                i, last = self._row.pop(t), self._n - 1
                if i != last:
                    self._vecs[i], self._tids[i], self._sids[i] = self._vecs[last], self._tids[last], self._sids[last]
                    self._row[int(self._tids[i])] = i
                self._n = last
            gone = np.array(present, np.int64)
            if self._ann is not None and len(gone):
                self._ann.remove(gone)
            if self._building is not None and len(gone):
                self._building.append(("remove", gone, None))
            if self._ann is not None and self._n < self.options.min_templates // 2 and self.options.mode == "auto":
                self._ann = None

    def _grow(self, need: int) -> None:
        cap = len(self._tids)
        if need <= cap:
            return
        cap = max(need, 2 * cap, 1024)
        vecs = np.zeros((cap, self.dimension), np.float32)
        tids, sids = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
        n = self._n
        vecs[:n], tids[:n], sids[:n] = self._vecs[:n], self._tids[:n], self._sids[:n]
        self._vecs, self._tids, self._sids = vecs, tids, sids

    # -- approximate index -----------------------------------------------------------
    def _wants_ann(self) -> bool:
        mode = self.options.mode
        return mode == "on" or (mode == "auto" and self._n >= self.options.min_templates)

    def _maybe_build(self) -> None:
        with self._lock:
            if self._ann is not None or self._building is not None or not self._wants_ann() or self._n == 0:
                return
            self._building = []
            snap = (self._tids[: self._n].copy(), self._vecs[: self._n].copy())
        if self.options.background:
            self._builder = threading.Thread(target=self._build, args=snap, name="faceledger-hnsw", daemon=True)
            self._builder.start()
        else:
            self._build(*snap)

    def _build(self, tids: np.ndarray, vecs: np.ndarray) -> None:
        o = self.options
        try:
            ann = make_ann(o.library, self.dimension, o.m, o.ef_construction, o.ef_search)
            ann.add(tids, vecs, threads=o.threads)
        except BaseException:
            with self._lock:
                self._building = None
            raise
        with self._lock:
            for op, ids, v in self._building or []:
                if op == "add":
                    ann.add(ids, v)
                else:
                    ann.remove(ids)
            self._building = None
            self._ann = ann

    def wait_for_ann(self, timeout: float | None = None) -> bool:
        """Wait for a background build to finish; ``True`` if an HNSW index is in use."""
        self._maybe_build()
        if self._builder is not None:
            self._builder.join(timeout)
        return self._ann is not None

    # -- search --------------------------------------------------------------------
    def search(self, probes: np.ndarray, k: int, exact: bool = False) -> list[list[tuple[int, float, int]]]:
        """Top ``k`` subjects per probe row: ``(subject_id, score, template_id)`` best first.

        ``exact`` bypasses the HNSW index (the reference for recall measurements).
        """
        with self._lock:
            n, ann = self._n, (None if exact else self._ann)
            if n == 0:
                return [[] for _ in range(len(probes))]
            if ann is None:
                with self._one_thread():
                    all_scores = probes @ self._vecs[:n].T
                tids_all = self._tids[:n]
            out = []
            for qi in range(len(probes)):
                if ann is not None:
                    def scores_of(m: int, q: np.ndarray = probes[qi]) -> tuple[np.ndarray, np.ndarray]:
                        return ann.search(q, m)
                else:
                    def scores_of(m: int, s: np.ndarray = all_scores[qi]) -> tuple[np.ndarray, np.ndarray]:
                        idx = np.argpartition(-s, m - 1)[:m] if m < len(s) else np.arange(len(s))
                        idx = idx[np.argsort(-s[idx], kind="stable")]
                        return tids_all[idx], s[idx]
                out.append(rank_subjects(scores_of, self.subject_of, k, n))
            return out
