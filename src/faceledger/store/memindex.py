"""In-memory search over one gallery: int8 codes scanned exactly, plus an optional HNSW index.

The index holds every template of the gallery as int8 codes (row ``i``: template
``tids[i]`` of subject ``sids[i]``); removal swaps the last row into the hole, so it
stays dense. A search scans the codes and re-scores the best rows in float32
(:mod:`.scan`): the result is the exact float32 top-m at a quarter of the memory
and memory traffic of a float32 matrix. The float32 rows for the re-score come from
``exact`` (the store decrypts them from the database); without it the index keeps
a float32 copy itself.

An HNSW graph (:mod:`faceledger.store.ann`) is used only when asked for
(``AnnOptions(mode="on")``, or ``"auto"`` from ``min_templates``); it is built in a
background thread by default (exact search answers until it is ready) and kept
consistent on every add and removal. Changes made while it is being built are
replayed on it before it is used, so it never holds an entry the codes do not, and
never misses one they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceledger.errors import StoreError

from ._common import rank_subjects
from .ann import AnnIndex, make_ann
from .planes import ROTATE_SLACK, PlaneScanner, Probe, bound_weight, pca_basis, plane1, plane_top, row_bound
from .rowmap import RowMap
from .scan import SCALE, quantize

__all__ = ["AnnOptions", "GalleryIndex"]

BASIS_MIN = 2_048  # templates from which the index is rotated to the gallery's principal axes (see planes.py)


@dataclass(frozen=True)
class AnnOptions:
    """When and how to use an approximate index.

    ``mode``: ``"off"`` (always exact: the default), ``"auto"`` (HNSW from
    ``min_templates`` up), ``"on"`` (HNSW at any size). ``background``: build in a thread.
    Exact search is the default at every size: on a million templates shaped like real
    ones (bench/search_scale.py) the int8 scan with a float32 re-score returns exact
    search's answer every time, while HNSW with these ``m``, ``ef_construction`` and
    ``ef_search`` keeps 97.8% of them (ef_search 512: 92.8%).
    """

    mode: str = "off"
    min_templates: int = 200_000
    background: bool = True
    library: str = "hnswlib"
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 1024
    threads: int = 0  # 0: every core


class GalleryIndex:
    """Templates of one gallery in memory; thread-safe.

    ``exact(template_ids)`` returns their float32 rows (in that order) for the re-score.
    The index also keeps a float32 copy of the rows (four more bytes per dimension, no
    database read per search) while it holds at most ``float32_up_to`` templates, and
    always without ``exact``. ``lock``: the lock ``exact`` itself takes, if any (the
    index then uses it too, so the two can never be taken in opposite orders).
    ``scan_threads``: threads of one exact scan (default :func:`.scan.scan_threads`).
    """

    def __init__(self, dimension: int, options: AnnOptions, version: int = 0,
                 exact: Callable[[np.ndarray], np.ndarray] | None = None, float32_up_to: int = 100_000,
                 lock: threading.RLock | None = None, scan_threads: int | None = None) -> None:
        self.dimension = dimension
        self.options = options
        self.version = version  # the gallery's change counter this index reflects
        self._lock = lock or threading.RLock()
        self._exact = exact
        self._float32_up_to = float32_up_to if exact is not None else None
        d1 = plane1(dimension)
        self._codes = np.zeros((0, d1), np.int8)  # plane 1: the first d1 columns of each code
        self._codes2 = np.zeros((0, dimension - d1), np.int8)  # plane 2: the rest
        self._resid = np.zeros(0, np.float32)  # each row's |x' - x8|
        self._bound = np.zeros(0, np.float32)  # each row's |x'_2| + LAMBDA |x'_1 - x8_1| (rounded up; planes.py)
        self._basis: np.ndarray | None = None  # x' = x @ basis (None: x' = x), set from BASIS_MIN templates
        self._vecs: np.ndarray | None = np.zeros((0, dimension), np.float32)
        self._tids = np.zeros(0, np.int64)
        self._sids = np.zeros(0, np.int64)
        self._n = 0
        self._row = RowMap()
        self._max_norm = 0.0  # the largest |x8| of any row ever added
        self._scanner = PlaneScanner(plane1(dimension), scan_threads)
        self._ann: AnnIndex | None = None
        self._building: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None
        self._builder: threading.Thread | None = None

    # -- state -------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays held (codes, ids, residual bound; a float32 copy if kept)."""
        return sum(a.nbytes for a in self._row_arrays()) + self._scanner.nbytes

    def _row_arrays(self) -> list[np.ndarray]:
        """Every array with a row per template (the float32 copy too, while kept)."""
        arrays = [self._codes, self._codes2, self._tids, self._sids, self._resid, self._bound, self._vecs]
        return [a for a in arrays if a is not None]

    def prepare(self) -> None:
        """Do now what the first search would do before it scans: pack plane 1 for the int8 kernel
        (it made the first search at a million 23 ms instead of 59; the arrays grow to what searches hold)."""
        with self._lock:
            self._scanner.prepare(self._codes[:self._n])

    @property
    def template_ids(self) -> set[int]:
        with self._lock:
            return set(self._row.ids().tolist())

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
            return self._sids[self._row.rows(tids)] if len(tids) else np.zeros(0, np.int64)

    # -- changes -----------------------------------------------------------------
    def add(self, tids: np.ndarray, sids: np.ndarray, vecs: np.ndarray) -> None:
        """Add templates (ids not yet present; ``vecs`` unit float32 rows)."""
        tids = np.asarray(tids, np.int64)
        if len(tids) == 0:
            return
        with self._lock:
            fresh = self._row.rows(tids) < 0
            if len(np.unique(tids)) != len(tids):  # the first of repeated ids wins
                fresh &= np.isin(np.arange(len(tids)), np.unique(tids, return_index=True)[1])
            tids, sids, vecs = tids[fresh], np.asarray(sids, np.int64)[fresh], np.asarray(vecs, np.float32)[fresh]
            if len(tids) == 0:
                return
            if self._basis is None and self._n + len(tids) >= BASIS_MIN:
                self._rotate(vecs)
            self._grow(self._n + len(tids))
            end = self._n + len(tids)
            self._tids[self._n:end], self._sids[self._n:end] = tids, sids
            self._encode(self._n, vecs)
            if self._vecs is not None:
                self._vecs[self._n:end] = vecs
            self._row.add(tids, np.arange(self._n, end))
            self._n = end
            self._scanner.changed(end - len(tids), end)
            if self._float32_up_to is not None and end > self._float32_up_to:
                self._vecs = None  # large: re-score from the store instead (a quarter of the memory)
            if self._ann is not None:
                self._ann.add(tids, vecs)
            if self._building is not None:
                self._building.append(("add", tids, vecs))
        self._maybe_build()

    def remove(self, tids: np.ndarray) -> None:
        """Remove templates by id (unknown ids are ignored)."""
        with self._lock:
            tids = np.unique(np.asarray(tids, np.int64))
            present = tids[self._row.rows(tids) >= 0].tolist()
            for t in present:
                i, last = self._row.pop(t), self._n - 1
                arrays = self._row_arrays()
                if i != last:
                    for a in arrays:
                        a[i] = a[last]
                    self._row.set(int(self._tids[i]), i)
                for a in arrays:  # nothing of a removed template stays behind in the spare rows
                    a[last] = 0
                self._scanner.changed(i, i + 1)
                self._scanner.changed(last, last + 1)
                self._n = last
            gone = np.array(present, np.int64)
            if self._ann is not None and len(gone) and not self._ann.erase(gone):
                self._ann = None  # its memory still held the removed vectors: dropped, built again below
            if self._building is not None and len(gone):
                self._building.append(("remove", gone, None))
            if self._ann is not None and self._n < self.options.min_templates // 2 and self.options.mode == "auto":
                self._ann = None
        self._maybe_build()

    def clear(self) -> None:
        """Remove every template, overwriting the arrays (the HNSW index, if any, is dropped)."""
        with self._lock:
            if self._building is not None:
                self._building.append(("remove", self._row.ids().copy(), None))
            for a in self._row_arrays():
                a[:] = 0
            self._scanner.changed(0, self._n)
            self._n, self._row, self._ann = 0, RowMap(), None

    def _grow(self, need: int) -> None:
        cap = len(self._tids)
        if need <= cap:
            return
        cap = max(need, cap + cap // 2, 1024)
        n = self._n

        def grown(a: np.ndarray) -> np.ndarray:
            b = np.zeros((cap, *a.shape[1:]), a.dtype)
            b[:n] = a[:n]
            return b
        self._codes, self._codes2, self._tids = grown(self._codes), grown(self._codes2), grown(self._tids)
        self._sids = grown(self._sids)
        self._resid, self._bound = grown(self._resid), grown(self._bound)
        if self._vecs is not None:
            self._vecs = grown(self._vecs)

    def _encode(self, at: int, vecs: np.ndarray) -> None:
        """Codes, residuals and bound numbers of ``vecs`` (original basis) into rows ``at:``."""
        if len(vecs) == 0:
            return
        rotated = vecs if self._basis is None else vecs @ self._basis
        codes, residual = quantize(rotated)
        self._max_norm = max(self._max_norm, float((np.linalg.norm(vecs, axis=1) + residual).max()))
        end = at + len(vecs)
        d1 = self._scanner.d1
        self._codes[at:end], self._codes2[at:end], self._resid[at:end] = codes[:, :d1], codes[:, d1:], residual
        self._bound[at:end] = row_bound(rotated, codes, d1)

    def _rotate(self, new: np.ndarray) -> None:
        """Choose the basis from the rows held and ``new`` ones, and encode the held rows in it again."""
        n = self._n
        try:
            held = self._rows_float(np.arange(n)) if n else np.zeros((0, self.dimension), np.float32)
        except StoreError:  # another process removed some meanwhile: stay as is, try again at the next add
            return
        self._basis = pca_basis(np.concatenate([held, new]))
        self._max_norm = 0.0
        self._encode(0, held)
        self._scanner.changed(0, n)

    def _rows_float(self, rows: np.ndarray) -> np.ndarray:
        """float32 templates of ``rows`` (kept, or fetched through ``exact``)."""
        if self._vecs is not None:
            return self._vecs[rows]
        vecs = np.asarray(self._exact(self._tids[rows]), np.float32)  # type: ignore[misc]
        if vecs.shape != (len(rows), self.dimension):
            raise StoreError(f"the store returned {vecs.shape} rows for {len(rows)} templates of the index")
        return vecs

    # -- approximate index -----------------------------------------------------------
    def _wants_ann(self) -> bool:
        mode = self.options.mode
        return mode == "on" or (mode == "auto" and self._n >= self.options.min_templates)

    def _maybe_build(self) -> None:
        with self._lock:
            if self._ann is not None or self._building is not None or not self._wants_ann() or self._n == 0:
                return
            self._building = []
            n = self._n  # the graph is built from the codes (its answers are re-scored exactly)
            if self._vecs is not None:
                vecs = self._vecs[:n].copy()
            else:  # back from the rotated basis
                vecs = np.hstack([self._codes[:n], self._codes2[:n]]).astype(np.float32) / SCALE
                vecs = vecs if self._basis is None else vecs @ self._basis.T
            snap = (self._tids[:n].copy(), vecs)
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
            erased = True
            for op, ids, v in self._building or []:
                if op == "add":
                    ann.add(ids, v)
                elif not ann.erase(ids):
                    erased = False  # too many removed meanwhile to overwrite them in place: build again
                    break
            self._building = None
            self._ann = ann if erased else None
        if not erased:
            del ann  # let the dropped graph go before a synchronous build makes the next one
            self._maybe_build()

    def wait_for_ann(self, timeout: float | None = None) -> bool:
        """Wait for a background build to finish; ``True`` if an HNSW index is in use."""
        self._maybe_build()
        if self._builder is not None:
            self._builder.join(timeout)
        return self._ann is not None

    # -- search --------------------------------------------------------------------
    def search(self, probes: np.ndarray, k: int, exact: bool = False) -> list[list[tuple[int, float, int]]]:
        """Top ``k`` subjects per probe row: ``(subject_id, score, template_id)`` best first.

        Scores are exact float32 cosines. ``exact`` bypasses the HNSW index (the
        reference for recall measurements).
        """
        with self._lock:
            n, ann = self._n, (None if exact else self._ann)
            if n == 0:
                return [[] for _ in range(len(probes))]
            return [rank_subjects(self._scores_of(q, n, ann), self.subject_of, k, n) for q in probes]

    def _scores_of(self, q: np.ndarray, n: int, ann: AnnIndex | None
                   ) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        """``scores_of(m)`` for :func:`rank_subjects`: the best ``m`` templates of ``q``, exact scores."""
        def rescore(rows: np.ndarray) -> np.ndarray:
            return np.einsum("ij,j->i", self._rows_float(rows), q)

        if ann is not None:
            def from_graph(m: int) -> tuple[np.ndarray, np.ndarray]:
                tids, _ = ann.search(q, m)
                scores = rescore(self._row.rows(tids))
                order = np.lexsort((tids, -scores))
                return tids[order], scores[order]
            return from_graph
        return self._plane_search(q, n, rescore)

    def _plane_probe(self, q: np.ndarray, n: int, rescore: Callable[[np.ndarray], np.ndarray]) -> Probe:
        """The two-plane scan of ``q`` (:mod:`.planes`): every row's upper bound, and ways to score rows."""
        qr = q if self._basis is None else q @ self._basis
        q_scale = 127 / max(float(np.abs(qr).max()), 1e-30)  # the probe's own int8 scale: its full range
        q8 = np.rint(qr * q_scale).astype(np.int8)
        unit, d1, codes = SCALE * q_scale, self._scanner.d1, self._codes[:n]
        q_norm, q_residual = float(np.linalg.norm(q)), float(np.linalg.norm(qr - q8 / q_scale))
        terms = [(self._bound[:n], bound_weight(float(np.linalg.norm(qr[d1:])), q_norm) * unit)]
        upper = self._scanner.upper(codes, q8, terms)

        def own(rows: np.ndarray) -> np.ndarray:  # |q' . (x' - x8)| <= |q| |x' - x8|
            return q_norm * self._resid[rows]

        def finer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # q' . x8, within |q| |x' - x8| of q . x
            both = np.hstack([np.take(self._codes, rows, axis=0), np.take(self._codes2, rows, axis=0)])
            return both.astype(np.float32) @ qr / SCALE, own(rows) + ROTATE_SLACK

        # |q' . x8 - q8 . x8| <= |q' - q8| |x8|, and the float32 rounding of the rotation
        return Probe(upper, unit, q_residual * self._max_norm + ROTATE_SLACK,
                     lambda rows: self._scanner.full(self._codes2, rows, q8), own, finer, rescore)

    def _plane_search(self, q: np.ndarray, n: int, rescore: Callable[[np.ndarray], np.ndarray]
                      ) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        """``scores_of(m)`` of the two-plane scan (:mod:`.planes`): exact float32 scores of the best ``m``."""
        probe = self._plane_probe(q, n, rescore)

        def from_scan(m: int) -> tuple[np.ndarray, np.ndarray]:
            rows, scores = plane_top(probe, m)
            return self._tids[rows], scores
        return from_scan
