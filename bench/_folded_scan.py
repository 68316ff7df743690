"""A design measured in the fourth round of issue 16 and not kept, timed by ``exact_scan.py`` as a peer.

The bound folded into the kernel: plane 1 holds the first ``d1`` rotated code columns **and**
``BOUND_COLS`` columns that carry each row's bound, so numkong's int8 dot product *is* the
upper bound (int32; nothing else written per row but one maximum per 256 rows); plane 2 is
then read in a second parallel pass over the blocks, once the floor is known.

The two-plane scan (:mod:`.planes`) scanned 96 rotated columns, then added two per-row
terms in float32 (six passes over the scores of a block) to get each row's upper bound.
Here those terms ride in the kernel itself: plane 1 holds the first ``d1`` rotated code
columns **and** ``BOUND_COLS`` columns that carry each row's bound, so the int8 dot
product *is* the upper bound (int32, nothing else written per row but one maximum per 256
rows).

For a row ``x' = x R`` (code ``x8``, ``_1`` the first ``d1`` columns, ``_2`` the rest) and a
probe ``q' = q R`` (``q8 = rint(q' * q_scale)``, ``unit = SCALE * q_scale``)::

    q . x  <=  q8_1 . x8_1 / unit + a |x'_2| + b |x'_1 - x8_1 / SCALE| + slack
           <=  q8_1 . x8_1 / unit + c R_x + slack          (a = |q'_2|, b = |q|)

with ``R_x = |x'_2| + LAMBDA |x'_1 - x8_1 / SCALE|`` and ``c = max(a, b / LAMBDA)`` (so
``c >= a`` and ``c LAMBDA >= b``); ``slack`` is the probe's own rounding and the float32
rounding of the rotation, as in :mod:`.planes`. A row stores ``r = ceil(R_x / RHO)`` in each
bound column; the probe puts ``W = ceil(unit c RHO)`` there (split over the columns, at most
127 each: a probe that would need more is quantised on a smaller scale instead). Then
``W r >= unit c R_x`` and the kernel's ``q8_1 . x8_1 + W r`` over ``unit``, plus ``slack``,
is a proven upper bound of the exact score. A row whose ``R_x`` exceeds ``127 RHO`` ("wide":
not a unit template, or clipped) cannot be bounded so; it is checked on its own every time.

The search (:func:`folded_top`) then runs in two parallel phases over the blocks: the kernel
(bounds and block maxima), and after the floor ``s`` is known (the m-th best exact score of
the best seeds), the rows whose bound reaches it, their full int8 scores (plane 2 read) and
the test of those against ``s``; only the few left are scored in float32.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from faceledger.store.planes import CHUNK, ROTATE_SLACK, SEED, PlaneScanner, best_rows, plane1, settle
from faceledger.store.scan import BLOCK, FLOAT_SLACK, RESCORE, SCALE, Scores, quantize, run_chunks

__all__ = ["folded_search"]

BOUND_COLS = 2  # columns of plane 1 that carry the bound (the probe's weight needs up to 2 x 127)
LAMBDA = 3.0  # weight of a row's plane 1 rounding error in its one bound number (about 1 / |q'_2| of a template)
RHO = 0.75 / 127  # step of a row's bound number: bounds up to 0.75 (real templates: at most 0.68 at 1M)
SPLIT_MIN = 2 * CHUNK  # fewer rows than this are scanned by the calling thread alone
def split(dimension: int) -> tuple[int, int]:
    """``(d1, depth)``: rotated code columns in plane 1 and the columns the kernel reads (94 and 96 of 128)."""
    depth = max(plane1(dimension), BOUND_COLS + 1)
    return depth - BOUND_COLS, depth


def row_bound(rotated: np.ndarray, codes: np.ndarray, d1: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's bound number ``ceil(R_x / RHO)`` (int8, at most 127) and whether it is wide (over 127)."""
    rest = np.linalg.norm(np.asarray(rotated[:, d1:], np.float64), axis=1)
    error = np.linalg.norm(np.asarray(rotated[:, :d1], np.float64) - codes[:, :d1].astype(np.float64) / SCALE, axis=1)
    r = np.ceil(((rest + LAMBDA * error) * (1 + 1e-6) + 1e-7) / RHO)
    wide = r > 127
    return np.minimum(r, 127).astype(np.int8), wide


def probe_weights(a: float, b: float, q_scale: float) -> tuple[float, int]:
    """The probe's scale (made smaller if its bound weight would not fit) and its weight ``W``.

    ``a = |q'_2|``, ``b = |q|``; ``W >= unit * c * RHO`` with ``unit = SCALE * q_scale``.
    """
    c = max(a, b / LAMBDA)
    need = SCALE * q_scale * c * RHO
    if need > 127 * BOUND_COLS - 1:
        q_scale *= (127 * BOUND_COLS - 1) / need
    return q_scale, min(127 * BOUND_COLS, math.ceil(SCALE * q_scale * c * RHO * (1 + 1e-6)))


def probe_columns(q8: np.ndarray, d1: int, weight: int) -> tuple[np.ndarray, np.ndarray]:
    """The probe of the kernel and of plane 2 (:meth:`FoldedScanner.full`).

    The kernel's: the first ``d1`` columns of ``q8``, then ``weight`` spread over the bound
    columns; plane 2's: the other columns of ``q8``, then minus the same weights.
    """
    spread = [min(127, weight - 127 * i) if weight > 127 * i else 0 for i in range(BOUND_COLS)]
    one = np.concatenate([q8[:d1], np.array(spread, np.int8)])
    two = np.concatenate([q8[d1:], -np.array(spread, np.int8)])
    return one, two


class FoldedScanner(PlaneScanner):
    """The kernel over plane 1 (bound columns included) and the per-block work after it (not thread-safe)."""

    def __init__(self, depth: int, threads: int | None = None) -> None:
        super().__init__(depth, threads)
        self._max = np.zeros(0, np.int32)

    def upper(self, codes: np.ndarray, qk: np.ndarray) -> Scores:  # type: ignore[override]
        """Phase 1: the kernel's ``qk . row`` (int32) of every row of ``codes`` and the maximum of every block."""
        n = len(codes)
        self._ready(codes, n)
        if len(self._part) < n:
            cap = max(n, 2 * len(self._part), 1024)
            self._part, self._max = np.empty(cap, np.int32), np.empty(-(-cap // BLOCK), np.int32)
        q = np.ascontiguousarray(qk[None, :])
        self.each_block(n, lambda lo, hi: self._scan(codes, q, lo, hi))
        return Scores(self._part[:n], self._max[:-(-n // BLOCK)])

    def each_block(self, n: int, fn: Callable[[int, int], object]) -> list:
        """``fn(lo, hi)`` for every block of ``n`` rows, on this thread and the helpers; the results, in no order."""
        helpers = self.threads - 1 if self._kernel is not None and n >= SPLIT_MIN else 0
        chunks = itertools.count()  # next() is atomic: each block is taken by one thread
        out: list = []

        def work() -> None:
            while (j := next(chunks)) * CHUNK < n:
                out.append(fn(j * CHUNK, min(n, (j + 1) * CHUNK)))
        run_chunks(work, helpers)
        return out

    def _scan(self, codes: np.ndarray, q: np.ndarray, lo: int, hi: int) -> None:
        part, packed = self._part[lo:hi], self._packed[lo // CHUNK]
        if self._kernel is not None and packed is not None:
            self._kernel[1](q, packed[1], out=self._kernel[2](part.reshape(1, -1)))  # type: ignore[index]
        elif self._kernel is not None:  # changed lately: not packed (yet)
            scratch = np.empty((1, hi - lo), np.float32)
            self._kernel[3](q, codes[lo:hi], metric="dot", out=scratch)
            part[:] = scratch[0]  # integers below 2**24: exact in float32
        else:  # no SIMD kernel installed: numpy in float32 (exact for these integers; slower)
            part[:] = codes[lo:hi].astype(np.float32) @ q[0].astype(np.float32)
        full = (hi - lo) // BLOCK * BLOCK
        np.max(part[:full].reshape(-1, BLOCK), axis=1, out=self._max[lo // BLOCK:(lo + full) // BLOCK])
        if full < hi - lo:
            self._max[(lo + full) // BLOCK] = part[full:].max()

    def full(self, plane2: np.ndarray, rows: np.ndarray, q2: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """``q8 . x8`` of ``rows`` (float32, exact): the last :meth:`upper` plus ``q2 . plane2[rows]`` read now.

        ``plane2`` holds the other code columns and the bound columns again, ``q2`` the probe's
        other columns and minus its bound weights, so the bound comes off in the same dot product.
        """
        out = self._part[rows].astype(np.float32)
        if len(rows) == 0:
            return out
        rest = np.take(plane2, rows, axis=0)
        if self._kernel is not None:
            out += self._kernel[3](q2[None, :], rest, metric="dot", out_dtype="float32")[0]
        else:
            out += rest.astype(np.float32) @ q2.astype(np.float32)
        return out


@dataclass(frozen=True)
class FoldedProbe:
    """One probe's phase 1 and the ways to score its rows (see :func:`folded_top`).

    ``upper``: the kernel's scores, in int8 units of ``1 / unit`` cosine; a row's exact
    score is at most ``upper / unit + slack`` (wide rows aside). ``full(rows)``: full int8
    scores, within ``own(rows) + slack`` of the exact ones. ``survivors(s)``: phase 2, the
    rows (not wide) whose bound and then full score can still reach ``s``, and how many read
    plane 2. ``wide``: rows checked on their own. ``finer`` and ``rescore`` as in :mod:`.planes`.
    """

    upper: Scores
    unit: float
    slack: float
    full: Callable[[np.ndarray], np.ndarray]
    own: Callable[[np.ndarray], np.ndarray]
    survivors: Callable[[float], tuple[np.ndarray, int]]
    wide: np.ndarray
    finer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    rescore: Callable[[np.ndarray], np.ndarray]


def folded_top(p: FoldedProbe, m: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The rows of the ``m`` best exact scores, best first, their scores, and the rows whose plane 2 was read.

    1. The ``SEED`` best bounds get full int8 scores; the best ``RESCORE`` of those (and the
       wide rows) are scored exactly: their ``m``-th best exact score ``s`` is a floor of the
       gallery's ``m``-th best.
    2. Phase 2 (every block, in parallel): the rows whose bound reaches ``s``, of those the
       ones whose full score is within its error of ``s``, then whose finer score is: scored exactly.
    Ties by row order.
    """
    n = len(p.upper)
    seed = np.union1d(p.upper.top(min(n, max(SEED, m))), p.wide)
    first = seed[np.argsort(-p.full(seed), kind="stable")[:max(m, RESCORE)]]
    exact, read = p.rescore(first), len(seed)
    if len(first) >= m and len(first) < n:
        s = float(np.partition(exact, len(exact) - m)[len(exact) - m]) - FLOAT_SLACK
        maybe, more = p.survivors(s)
        read += more
        if len(p.wide):
            w = p.wide[p.full(p.wide) >= (s - p.slack - p.own(p.wide)) * p.unit]
            maybe = np.union1d(maybe, w)
        first, exact = settle(p, first, exact, maybe[~np.isin(maybe, first)], s)
    return *best_rows(first, exact, m), read


def folded_search(vectors: np.ndarray, basis: np.ndarray, threads: int, k: int, stats: list[int]):  # noqa: ANN201
    """``search(q)``: the top subject (one template each) of the folded scan over ``vectors`` rotated by ``basis``.

    Rows whose plane 2 was read are added to ``stats[0]``.
    """
    from faceledger.store._common import rank_subjects

    d1, depth = split(vectors.shape[1])
    n = len(vectors)
    codes, plane2 = np.zeros((n, depth), np.int8), np.zeros((n, vectors.shape[1] - d1 + BOUND_COLS), np.int8)
    resid, wide = np.zeros(n, np.float32), np.zeros(n, bool)
    for i in range(0, n, 100_000):
        j = min(n, i + 100_000)
        rotated = vectors[i:j] @ basis
        c, resid[i:j] = quantize(rotated)
        bound, wide[i:j] = row_bound(rotated, c, d1)
        codes[i:j, :d1], codes[i:j, d1:] = c[:, :d1], bound[:, None]
        plane2[i:j, :-BOUND_COLS], plane2[i:j, -BOUND_COLS:] = c[:, d1:], bound[:, None]
    max_norm = float((np.linalg.norm(vectors, axis=1) + resid).max())
    scanner, wide_rows = FoldedScanner(depth, threads), np.flatnonzero(wide)

    def probe_of(q: np.ndarray) -> FoldedProbe:
        qr, q_norm = q @ basis, float(np.linalg.norm(q))
        q_scale, weight = probe_weights(float(np.linalg.norm(qr[d1:])), q_norm, 127 / float(np.abs(qr).max()))
        q8 = np.rint(qr * q_scale).astype(np.int8)
        unit, slack = SCALE * q_scale, float(np.linalg.norm(qr - q8 / q_scale)) * max_norm + ROTATE_SLACK
        q1, q2 = probe_columns(q8, d1, weight)
        upper = scanner.upper(codes, q1)

        def own(rows: np.ndarray) -> np.ndarray:
            return q_norm * resid[rows]

        def full(rows: np.ndarray) -> np.ndarray:
            return scanner.full(plane2, rows, q2)

        def survivors(s: float) -> tuple[np.ndarray, int]:
            least = int(np.clip(np.ceil((s - slack) * unit), -2**31, 2**31 - 1))  # the scores are integers

            def block(lo: int, hi: int) -> tuple[np.ndarray, int]:
                rows = lo + np.flatnonzero(upper.approx[lo:hi] >= least)
                return rows[full(rows) >= (s - slack - own(rows)) * unit], len(rows)
            found = scanner.each_block(n, block)
            return np.concatenate([f[0] for f in found]), sum(f[1] for f in found)

        def finer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            both = np.hstack([codes[rows, :d1], plane2[rows, :-BOUND_COLS]])
            return both.astype(np.float32) @ qr / SCALE, own(rows) + ROTATE_SLACK
        return FoldedProbe(upper, unit, slack, full, own, survivors, wide_rows, finer, lambda r: vectors[r] @ q)

    def search(q: np.ndarray) -> int:
        probe = probe_of(q)

        def scores_of(m: int) -> tuple[np.ndarray, np.ndarray]:
            rows, scores, read = folded_top(probe, m)
            stats[0] += read
            return rows, scores
        return rank_subjects(scores_of, lambda t: t, k, n)[0][0]
    return search
