"""HNSW indexes over unit vectors (inner product = cosine), behind one small interface.

Two libraries that support removal are wrapped: ``hnswlib`` (the default, chosen
by ``bench/search_scale.py``: see docs/bench-storage.md) and ``usearch``. Ids are
template ids (non-negative integers). Each library is imported only when used.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from faceledger.errors import BackendUnavailableError, InputError

__all__ = ["ANN_LIBRARIES", "AnnIndex", "ERASE_IN_PLACE_MAX", "make_ann"]

#: At most this many ids are erased in place in an hnswlib graph (each costs an update of the
#: graph: 17 ms at 100,000 templates here); more, and the caller drops the graph and builds it again.
ERASE_IN_PLACE_MAX = 32

ANN_LIBRARIES = ("hnswlib", "usearch")


class AnnIndex(Protocol):
    """An approximate nearest-neighbour index of unit vectors keyed by integer ids.

    ``ef_search`` is the size of the candidate list of a search (raised to ``m``
    when more results are asked for): larger is slower and more exact.
    """

    ef_search: int

    def add(self, ids: np.ndarray, vecs: np.ndarray, threads: int = 1) -> None: ...
    def remove(self, ids: np.ndarray) -> None: ...
    def erase(self, ids: np.ndarray) -> bool: ...
    def search(self, probe: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]: ...
    def __len__(self) -> int: ...


def _threads(threads: int) -> int:
    return threads if threads > 0 else (os.cpu_count() or 1)


class HnswlibIndex:
    """``hnswlib`` in inner-product space; removed slots are reused by later additions."""

    def __init__(self, dimension: int, m: int, ef_construction: int, ef_search: int) -> None:
        try:
            import hnswlib
        except ImportError:
            raise BackendUnavailableError("the HNSW index needs hnswlib: pip install hnswlib") from None
        self._index = hnswlib.Index(space="ip", dim=dimension)
        self._index.init_index(max_elements=1024, ef_construction=ef_construction, M=m,
                               allow_replace_deleted=True)
        self.ef_search = ef_search
        self._live = 0
        self._deleted = 0  # marked-deleted slots, reused by later additions

    def __len__(self) -> int:
        return self._live

    def add(self, ids: np.ndarray, vecs: np.ndarray, threads: int = 1) -> None:
        if len(ids) == 0:
            return
        idx = self._index
        free = idx.get_max_elements() - idx.get_current_count() + self._deleted
        if len(ids) > free:
            idx.resize_index(max(idx.get_max_elements() * 2, idx.get_current_count() + len(ids) + 1024))
        idx.add_items(vecs, np.asarray(ids, np.uint64), num_threads=_threads(threads), replace_deleted=True)
        self._deleted -= min(len(ids), self._deleted)
        self._live += len(ids)

    def remove(self, ids: np.ndarray) -> None:
        """Mark ``ids`` deleted: hnswlib keeps their vectors (for routing, and until a slot is reused)."""
        for t in np.asarray(ids, np.int64).tolist():
            self._index.mark_deleted(t)
            self._live -= 1
            self._deleted += 1

    def erase(self, ids: np.ndarray) -> bool:
        """Remove ``ids`` and overwrite their vectors in the graph's memory with zeros first (an update
        of each element, its links repaired); False, removing nothing, beyond :data:`ERASE_IN_PLACE_MAX`."""
        ids = np.asarray(ids, np.int64)
        if len(ids) > ERASE_IN_PLACE_MAX:
            return False
        if len(ids):
            blank = np.zeros((len(ids), self._index.dim), np.float32)
            self._index.add_items(blank, ids.astype(np.uint64), num_threads=1, replace_deleted=False)
            self.remove(ids)
        return True

    def search(self, probe: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        m = min(m, self._live)
        if m <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        self._index.set_ef(max(self.ef_search, m))
        labels, dist = self._index.knn_query(probe[None, :], k=m, num_threads=1)
        return labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)


class UsearchIndex:
    """``usearch`` with the inner-product metric."""

    def __init__(self, dimension: int, m: int, ef_construction: int, ef_search: int) -> None:
        try:
            from usearch.index import Index
        except ImportError:
            raise BackendUnavailableError("the usearch index needs usearch: pip install usearch") from None
        self._index = Index(ndim=dimension, metric="ip", dtype="f32", connectivity=m,
                            expansion_add=ef_construction, expansion_search=ef_search)
        self.ef_search = ef_search

    def __len__(self) -> int:
        return len(self._index)

    def add(self, ids: np.ndarray, vecs: np.ndarray, threads: int = 1) -> None:
        if len(ids):
            self._index.add(np.asarray(ids, np.uint64), np.ascontiguousarray(vecs, np.float32),
                            threads=_threads(threads))

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            self._index.remove(np.asarray(ids, np.uint64))

    def erase(self, ids: np.ndarray) -> bool:
        """usearch offers no way to overwrite a removed vector: False (the caller drops the index)."""
        return len(ids) == 0

    def search(self, probe: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        m = min(m, len(self._index))
        if m <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        self._index.expansion_search = max(self.ef_search, m)
        res = self._index.search(probe, m, threads=1)
        return np.asarray(res.keys, np.int64), (1.0 - np.asarray(res.distances)).astype(np.float32)


def make_ann(library: str, dimension: int, m: int, ef_construction: int, ef_search: int) -> AnnIndex:
    """An empty index of ``library`` (one of :data:`ANN_LIBRARIES`)."""
    if library == "hnswlib":
        return HnswlibIndex(dimension, m, ef_construction, ef_search)
    if library == "usearch":
        return UsearchIndex(dimension, m, ef_construction, ef_search)
    raise InputError(f"unknown ANN library {library!r}: choose one of {', '.join(ANN_LIBRARIES)}")
