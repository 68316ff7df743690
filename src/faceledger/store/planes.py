"""A two-plane exact scan: read the first columns of every row (plane 1), the rest only where they could matter.

Templates are rotated by a fixed orthogonal matrix ``R`` (:func:`pca_basis`: the
principal axes of the gallery, highest variance first; cosines are unchanged) before
they are quantised to int8 (:func:`.scan.quantize`). Plane 1 is the first :func:`plane1`
columns of every code, packed for numkong's int8 matrix kernel in chunks of ``CHUNK``
rows; plane 2, the rest, is an array of its own, read only for the rows that survive
plane 1.

For a probe ``q' = q R`` (quantised on its own scale: ``q8 = rint(q' * q_scale)``,
``unit = SCALE * q_scale``) and a row ``x' = x R`` (code ``x8``; plane parts ``_1`` and
``_2``), with ``p = q8_1 . x8_1 / unit``, Cauchy-Schwarz on each part gives::

    q . x  =  q'_1 . x'_1 + q'_2 . x'_2
          <=  p + |q'_1| |x'_1 - x8_1 / SCALE| + |q'_1 - q8_1 / q_scale| |x8_1 / SCALE| + |q'_2| |x'_2|
          <=  p + c B_x + |q' - q8 / q_scale| max|x8 / SCALE|

with one number per row, ``B_x = |x'_2| + LAMBDA |x'_1 - x8_1 / SCALE|`` (rounded up), and
``c = max(|q'_2|, |q| / LAMBDA)`` per probe: ``c >= |q'_2|`` and ``c LAMBDA >= |q| >= |q'_1|``,
so ``c B_x`` covers both row terms (one multiply-add per row instead of two; the bound is
about as tight: 2.0% of rows read plane 2 at 1M against 1.9% with the two terms apart). The
probe's own term uses the largest ``|x8|`` of the gallery, and a small constant covers the
float32 rounding of the rotation. Once ``m`` rows are known whose exact score is at least ``s``
(scored exactly), a row whose upper bound is below ``s`` cannot be in the top ``m``: only
the others read plane 2 (:func:`plane_top`). The result is the exact float32 top ``m``,
proven, not estimated; the pruning is strong for a probe with close matches and weaker
for one without (it then reads plane 2 of more rows).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .scan import BLOCK, FLOAT_SLACK, RESCORE, SCALE, Scores, run_chunks, scan_threads

__all__ = ["CHUNK", "LAMBDA", "PlaneScanner", "Probe", "best_rows", "bound_weight", "not_scored", "pca_basis", "plane1",
           "plane_top", "row_bound", "settle"]

CHUNK = 65_536  # rows per packed block of plane 1 (a multiple of BLOCK)
SEED = 1_024  # rows whose full int8 score picks the first rows scored exactly (256: 10% more rows read plane 2 at p95)
ROTATE_SLACK = 1e-4  # float32 rounding of the rotation and of |x'_2| (cosine units), far above what it can reach
SPLIT_MIN = 2 * CHUNK  # fewer rows than this are scanned by the calling thread alone (and packed at once)
PACK_AFTER = 4  # scans a changed block of a large index is read unpacked before it is packed again
LAMBDA = 3.0  # weight of a row's plane 1 rounding error in its bound number (about 1 / |q'_2| of a template)


def plane1(dimension: int) -> int:
    """Columns of plane 1 for templates of ``dimension``: 3/4 of them, down to a multiple of 32 (96 of 128).

    numkong's packed int8 kernel is about twice as slow for a depth that is not a
    multiple of 32 (88 or 104 columns took twice the time of 96; docs/benchmarks.md).
    """
    d1 = dimension * 3 // 4
    return d1 // 32 * 32 if d1 >= 32 else max(1, d1)


def pca_basis(vecs: np.ndarray) -> np.ndarray:
    """An orthogonal float32 matrix whose columns are the principal axes of ``vecs`` (uncentred), largest first."""
    v = np.asarray(vecs, np.float64)
    w, r = np.linalg.eigh(v.T @ v)
    r = r[:, np.argsort(-w, kind="stable")]
    q, _ = np.linalg.qr(r)  # orthonormal to float64 precision
    return q.astype(np.float32)


def row_bound(rotated: np.ndarray, codes: np.ndarray, d1: int) -> np.ndarray:
    """Each row's bound number ``|x'_2| + LAMBDA |x'_1 - x8_1 / SCALE|`` of rotated rows and their codes, rounded up."""
    rest = np.linalg.norm(np.asarray(rotated[:, d1:], np.float64), axis=1)
    error = np.linalg.norm(rotated[:, :d1] - codes[:, :d1].astype(np.float64) / SCALE, axis=1)
    return ((rest + LAMBDA * error) * (1 + 1e-6) + 1e-7).astype(np.float32)


def bound_weight(rest_norm: float, norm: float) -> float:
    """``c = max(|q'_2|, |q| / LAMBDA)``: ``c`` times a row's bound number covers both of its terms."""
    return max(rest_norm, norm / LAMBDA)


def _packer() -> tuple[Callable, Callable, Callable, Callable] | None:
    try:
        import numkong
    except ImportError:
        return None
    return numkong.dots_pack, numkong.dots_packed, numkong.from_dlpack, numkong.cdist


class PlaneScanner:
    """Upper bounds of every row's score from plane 1 (reusable buffers; not thread-safe: lock around it).

    ``changed(lo, hi)`` must be called for rows whose codes change (or that appear or
    disappear); their chunks are packed again before the next scan.
    """

    def __init__(self, d1: int, threads: int | None = None) -> None:
        self.d1 = d1
        self.threads = threads or scan_threads()
        self._kernel = _packer()
        self._packed: list[object | None] = []  # per chunk: (rows packed, PackedMatrix) or None
        self._steady: list[int] = []  # per chunk: scans since it last changed, while unpacked
        self._part = np.zeros(0, np.int32)  # q8_1 . x8_1 of every row
        self._upper = self._scratch = np.zeros(0, np.float32)
        self._max = np.zeros(0, np.float32)
        self._best = np.zeros(0, np.int64)  # the row of each block's maximum
        self.plane2_rows = 0  # rows whose plane 2 was read, over every scan (a statistic)

    @property
    def nbytes(self) -> int:
        packed = sum(p[1].nbytes for p in self._packed if p is not None)  # type: ignore[index]
        buffers = self._part.nbytes + self._upper.nbytes + self._scratch.nbytes + self._max.nbytes + self._best.nbytes
        return packed + buffers

    def changed(self, lo: int, hi: int) -> None:
        for j in range(lo // CHUNK, min(-(-hi // CHUNK), len(self._packed))):
            self._packed[j], self._steady[j] = None, 0

    def prepare(self, codes: np.ndarray) -> None:
        """Pack now the blocks the next scan would pack (every block of a new index), so that scan is not
        the slow one."""
        self._ready(codes, len(codes))

    def _ready(self, codes: np.ndarray, n: int) -> None:
        """Pack the blocks that have not changed for ``PACK_AFTER`` scans; the others are read unpacked.

        Packing a block costs about ten scans of it, so a block that changes between most
        searches (enrollment one subject at a time) is scanned with ``cdist`` instead.
        """
        chunks = -(-n // CHUNK)
        del self._packed[chunks:], self._steady[chunks:]
        self._packed.extend([None] * (chunks - len(self._packed)))
        self._steady.extend([PACK_AFTER] * (chunks - len(self._steady)))  # new blocks are packed at once
        if self._kernel is None:
            return
        for j in range(chunks):
            rows = min(CHUNK, n - j * CHUNK)
            p = self._packed[j]
            if p is not None and p[0] != rows:  # type: ignore[index]
                self._packed[j], self._steady[j] = None, 0
            if self._packed[j] is None:
                self._steady[j] += 1
                if self._steady[j] > PACK_AFTER or n < SPLIT_MIN:
                    block = codes[j * CHUNK:j * CHUNK + rows, :self.d1]
                    self._packed[j] = (rows, self._kernel[0](np.ascontiguousarray(block), dtype="int8"))

    def upper(self, codes: np.ndarray, q8: np.ndarray, terms: list[tuple[np.ndarray, float]]) -> Scores:
        """``q8_1 . x8_1 + sum(weight * per_row)`` over ``terms`` for every row, and block maxima.

        :meth:`full` reads plane 2 after it.
        """
        n = len(codes)
        self._ready(codes, n)
        if len(self._part) < n:
            cap = max(n, 2 * len(self._part), 1024)
            self._part, self._upper, self._scratch = np.empty(cap, np.int32), *np.empty((2, cap), np.float32)
            self._max, self._best = np.empty(-(-cap // BLOCK), np.float32), np.empty(-(-cap // BLOCK), np.int64)
        q1 = np.ascontiguousarray(q8[None, :self.d1])
        helpers = self.threads - 1 if self._kernel is not None and n >= SPLIT_MIN else 0
        chunks = itertools.count()  # next() is atomic: each chunk is taken by one thread

        def work() -> None:
            while (j := next(chunks)) * CHUNK < n:
                self._chunk(j, codes, q1, terms, min(n, (j + 1) * CHUNK))
        run_chunks(work, helpers)
        blocks = -(-n // BLOCK)
        return Scores(self._upper[:n], self._max[:blocks], self._best[:blocks])

    def full(self, plane2: np.ndarray, rows: np.ndarray, q8: np.ndarray) -> np.ndarray:
        """``q8 . x8`` of ``rows`` (float32): plane 1 from the last :meth:`upper`, ``plane2`` (other columns) now."""
        self.plane2_rows += len(rows)
        out = self._part[rows].astype(np.float32)
        if len(rows) == 0 or plane2.shape[1] == 0:
            return out
        rest = np.take(plane2, rows, axis=0)
        if self._kernel is not None:
            out += self._kernel[3](q8[None, self.d1:], rest, metric="dot", out_dtype="float32")[0]
        else:
            out += rest.astype(np.float32) @ q8[self.d1:].astype(np.float32)
        return out

    def _chunk(self, j: int, codes: np.ndarray, q1: np.ndarray, terms: list[tuple[np.ndarray, float]],
               hi: int) -> None:
        lo = j * CHUNK
        part, upper = self._part[lo:hi], self._upper[lo:hi]
        scratch = self._scratch[lo:hi]
        if self._kernel is not None and self._packed[j] is not None:
            self._kernel[1](q1, self._packed[j][1], out=self._kernel[2](part.reshape(1, -1)))  # type: ignore[index]
        elif self._kernel is not None:  # changed lately: not packed (yet)
            self._kernel[3](q1, codes[lo:hi, :self.d1], metric="dot", out=scratch.reshape(1, -1))
            part[:] = scratch  # integers below 2**24: exact in float32
        else:  # no SIMD kernel installed: numpy in float32 (exact for these integers; slower)
            part[:] = codes[lo:hi, :self.d1].astype(np.float32) @ q1[0].astype(np.float32)
        # no temporary arrays below: one of 256 KB is mapped and faulted in anew each time
        if not terms:
            upper[:] = part
        for i, (per_row, weight) in enumerate(terms):  # the first term is added to the int32 scores as they convert
            np.multiply(per_row[lo:hi], np.float32(weight), out=scratch)
            np.add(upper if i else part, scratch, out=upper, dtype=np.float32, casting="unsafe")
        self._block_maxima(lo, hi)

    def _block_maxima(self, lo: int, hi: int) -> None:
        """The row of each block's largest upper bound, and that bound, for rows ``lo:hi`` (``lo`` a block start).

        ``argmax`` then a gather is cheaper than ``max`` alone (0.18 + 0.03 vs 0.26 ms per
        million rows), and the rows are the scan's seeds (:meth:`.Scores.seeds`).
        """
        upper, b0 = self._upper[lo:hi], lo // BLOCK
        full = (hi - lo) // BLOCK
        best = self._best[b0:b0 + -(-(hi - lo) // BLOCK)]
        np.argmax(upper[:full * BLOCK].reshape(-1, BLOCK), axis=1, out=best[:full])
        if full < len(best):
            best[full] = np.argmax(upper[full * BLOCK:])
        best += np.arange(lo, hi, BLOCK)
        np.take(self._upper, best, out=self._max[b0:b0 + len(best)])


@dataclass(frozen=True)
class Probe:
    """One probe's scan and the ways to score particular rows of it (see :func:`plane_top`).

    Scores in int8 units are ``1 / unit`` cosine. ``upper``: an upper bound of every
    row's exact score, less ``slack`` (plane 1 dot products plus each row's plane 2 and
    plane 1 error terms); ``full(rows)``: full int8 scores, within ``own(rows) + slack``
    of the exact ones; ``finer(rows)``: closer scores and their bounds; ``rescore(rows)``:
    exact float32 scores.
    """

    upper: Scores
    unit: float
    slack: float
    full: Callable[[np.ndarray], np.ndarray]
    own: Callable[[np.ndarray], np.ndarray]
    finer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    rescore: Callable[[np.ndarray], np.ndarray]


def plane_top(p: Probe, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the ``m`` best exact scores, best first, and those scores (ties by row order).

    1. The best rows of the ``SEED`` blocks with the best upper bounds (:meth:`.Scores.seeds`)
       get full int8 scores; the best ``RESCORE`` of those are scored exactly, and their
       ``m``-th best exact score ``s`` is a floor of the ``m``-th best of the gallery
       (exact scores of any ``m`` rows are: the seeds only make it a high one).
    2. Only rows whose upper bound reaches ``s`` can score ``s`` or more: their full int8
       scores are read (plane 2); of those, only the ones whose full score is within
       their bound of ``s``, then whose finer score is within its bound, are scored exactly.
    """
    n, u = len(p.upper), p.unit
    seed = p.upper.seeds(min(n, max(SEED, m)))
    first = seed[np.argsort(-p.full(seed), kind="stable")[:max(m, RESCORE)]]
    exact = p.rescore(first)
    if len(first) < m:
        maybe, s = np.arange(n), -np.inf
    else:
        s = float(np.partition(exact, len(exact) - m)[len(exact) - m]) - FLOAT_SLACK
        maybe = p.upper.at_least((s - p.slack) * u)
    maybe = maybe[p.full(maybe) >= (s - p.slack - p.own(maybe)) * u]
    return best_rows(*settle(p, first, exact, not_scored(maybe, first), s), m)


def not_scored(rows: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """``rows`` without those in ``scored`` (searchsorted: 10x faster than ``np.isin`` here)."""
    known = np.sort(scored)
    return rows[known[np.minimum(np.searchsorted(known, rows), len(known) - 1)] != rows]


def settle(p: Probe, first: np.ndarray, exact: np.ndarray, maybe: np.ndarray,
           s: float) -> tuple[np.ndarray, np.ndarray]:
    """``first`` and their ``exact`` scores, with the rows of ``maybe`` whose finer score can still
    reach ``s`` scored exactly and added."""
    if len(maybe):
        closer, err = p.finer(maybe)
        maybe = maybe[closer >= s - err]
    if len(maybe):
        first, exact = np.concatenate([first, maybe]), np.concatenate([exact, p.rescore(maybe)])
    return first, exact


def best_rows(rows: np.ndarray, exact: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` rows of the best ``exact`` scores, best first (ties by row order), and their scores."""
    order = np.lexsort((rows, -exact))[:m]
    return rows[order], exact[order]
