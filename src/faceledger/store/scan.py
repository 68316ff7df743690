"""Exact top-m search that reads a quarter of the bytes: an int8 scan, then a float32 re-score.

A gallery's templates are kept as int8 codes (``round(x * SCALE)``, 128 bytes per
128-D template instead of 512). One query scans every code with an int8 dot-product
kernel (``numkong``, SIMD; about 4x fewer bytes than a float32 scan, which is what a
scan of a million templates is limited by), then re-scores a few rows exactly in
float32 from the original templates.

The answer is the *exact* float32 top-m, not an approximation. For a probe ``q`` and
a template ``x``, with ``x8 = codes / SCALE`` and ``q8`` likewise::

    |q.x - q8.x8| <= |q| * |x - x8| + |q - q8| * |x8|        (Cauchy-Schwarz)

The largest residual ``|x - x8|`` of the gallery bounds every row, so once the m-th
best exact score ``s_m`` of the first candidates is known, every row whose int8 score
is below ``s_m - bound`` provably cannot enter the top m; the rows above it are
re-scored too. For unit templates the bound is about 0.03 (the residual of a 128-D
template is about 0.013, at most 0.022), which leaves a few dozen rows to re-score.
Rows with a component beyond the int8 range ("wide" rows, clipped) have a larger
residual: they are checked one by one with their own bound, so one of them does not
widen the bound of all the others.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["SCALE", "Int8Scanner", "exact_top", "quantize", "wide_residual"]

SCALE = 127 / 0.5  # components beyond +-0.5 are clipped (their error counts in the row's residual)
RESCORE = 32  # rows re-scored in float32 before the bound is applied
FLOAT_SLACK = 1e-5  # float32 rounding of the exact scores


def quantize(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes of float32 rows and the L2 norm of each row's quantisation error."""
    vecs = np.asarray(vecs, np.float32)
    codes = np.clip(np.rint(vecs * SCALE), -127, 127).astype(np.int8)
    residual = np.linalg.norm(vecs - codes.astype(np.float32) / SCALE, axis=1).astype(np.float32)
    return codes, residual


def wide_residual(dimension: int) -> float:
    """The largest residual of a row without clipping; a row above it is "wide"."""
    return 0.5 / SCALE * dimension ** 0.5


def _kernel() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None:
    try:
        import numkong
    except ImportError:
        return None

    def dot(q8: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
        numkong.cdist(q8[None, :], codes, metric="dot", out=out[None, :])
    return dot


class Int8Scanner:
    """Scores one probe against int8 codes into a reusable buffer (not thread-safe: lock around it)."""

    def __init__(self) -> None:
        self._dot = _kernel()
        self._buf = np.zeros(0, np.float32)

    def scores(self, codes: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float]:
        """int8 dot products of ``q`` with every row (in units of ``1 / SCALE**2``), and ``|q - q8|``."""
        q8, rq = quantize(q[None, :])
        n = len(codes)
        if len(self._buf) < n:
            self._buf = np.empty(max(n, 2 * len(self._buf), 1024), np.float32)
        out = self._buf[:n]
        if self._dot is not None:
            self._dot(q8[0], codes, out)
        else:  # no SIMD kernel installed: numpy in float32 chunks (slower, same result)
            qf = q8[0].astype(np.float32)
            for i in range(0, n, 65536):
                out[i:i + 65536] = codes[i:i + 65536].astype(np.float32) @ qf
        return out, float(rq[0])


def top_rows(approx: np.ndarray, c: int) -> np.ndarray:
    """At least ``c`` rows (unordered) including the ``c`` largest of ``approx``.

    On large arrays a threshold from block maxima (the c-th largest maximum of 1,024-row
    blocks is at most the c-th largest value) avoids a full partition of every score.
    """
    n = len(approx)
    if c >= n:
        return np.arange(n)
    if n < 65536:
        return np.argpartition(approx, n - c)[n - c:]
    full = n - n % 1024
    maxima = approx[:full].reshape(-1, 1024).max(axis=1)
    if full < n:
        maxima = np.append(maxima, approx[full:].max())
    if c >= len(maxima):
        return np.argpartition(approx, n - c)[n - c:]
    threshold = np.partition(maxima, len(maxima) - c)[len(maxima) - c]
    return np.flatnonzero(approx >= threshold)


def exact_top(approx: np.ndarray, m: int, bound: float, rescore: Callable[[np.ndarray], np.ndarray],
              wide: tuple[np.ndarray, np.ndarray] | None = None,
              row_bound: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the ``m`` best exact scores, best first, and those scores.

    ``approx``: int8 scores (units of ``1 / SCALE**2``); ``bound``: the most an int8
    score can differ from the exact one (cosine units) for every row but the ``wide``
    ones, given as ``(rows, their own bounds)``; ``row_bound(rows)``, if given, the
    (smaller) bounds of particular rows, to re-score fewer; ``rescore(rows)``: exact
    float32 scores of ``rows``. Ties are broken by row order.
    """
    n = len(approx)
    rows = top_rows(approx, min(n, max(m, RESCORE)))
    exact = rescore(rows)
    if len(rows) < n:
        s_m = np.partition(exact, len(exact) - m)[len(exact) - m] if m <= len(exact) else -np.inf
        floor = (s_m - bound - FLOAT_SLACK) * SCALE * SCALE
        extra = np.flatnonzero(approx >= floor)
        if row_bound is not None and len(extra):
            extra = extra[approx[extra] >= (s_m - row_bound(extra) - FLOAT_SLACK) * SCALE * SCALE]
        if wide is not None and len(wide[0]):
            w_rows, w_bounds = wide
            near = approx[w_rows] >= (s_m - w_bounds - FLOAT_SLACK) * SCALE * SCALE
            extra = np.union1d(extra, w_rows[near])
        extra = np.setdiff1d(extra, rows, assume_unique=True)
        if len(extra):
            rows, exact = np.concatenate([rows, extra]), np.concatenate([exact, rescore(extra)])
    order = np.lexsort((rows, -exact))[:m]
    return rows[order], exact[order]
