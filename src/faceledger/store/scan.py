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

Finding the rows above a score reads only the 256-row blocks whose maximum reaches it
(:class:`Scores`): a block whose maximum is lower holds no such row, so the rows found
are exactly those a full pass would find.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["BLOCK", "SCALE", "Int8Scanner", "Scores", "exact_top", "quantize", "scan_threads", "wide_residual"]

SCALE = 127 / 0.5  # components beyond +-0.5 are clipped (their error counts in the row's residual)
RESCORE = 32  # rows re-scored in float32 before the bound is applied
FLOAT_SLACK = 1e-5  # float32 rounding of the exact scores
BLOCK = 256  # rows per block maximum
CHUNK = 65_536  # the fewest rows scanned per step (a multiple of BLOCK); a scan is cut into <= 4 steps a thread
SPLIT_MIN = 2 * CHUNK  # fewer rows than this are scanned by the calling thread alone


def quantize(vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes of float32 rows and the L2 norm of each row's quantisation error."""
    vecs = np.asarray(vecs, np.float32)
    codes = np.clip(np.rint(vecs * SCALE), -127, 127).astype(np.int8)
    residual = np.linalg.norm(vecs - codes.astype(np.float32) / SCALE, axis=1).astype(np.float32)
    return codes, residual


def wide_residual(dimension: int) -> float:
    """The largest residual of a row without clipping; a row above it is "wide"."""
    return 0.5 / SCALE * dimension ** 0.5


def scan_threads() -> int:
    """Threads of one scan: ``$FACELEDGER_SCAN_THREADS``, else ``min(2, cores)``."""
    value = os.environ.get("FACELEDGER_SCAN_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(2, os.cpu_count() or 1))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the parent's helper threads do not exist: start a pool of its own when needed."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool)


def _workers(n: int) -> ThreadPoolExecutor:
    """The process-wide pool of scan helpers (at least ``n`` threads; started once, reused by every index)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(n, thread_name_prefix="faceledger-scan")
        return _pool


def run_chunks(work: Callable[[], None], helpers: int) -> None:
    """Run ``work`` on this thread and on ``helpers`` pool threads until it runs out of chunks.

    ``work`` takes chunks from a shared counter until none is left, so a helper that has not
    started by the time this thread is done has nothing to do and is cancelled; an error in any
    of them is raised here.
    """
    started = [_workers(helpers).submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for f in started:
            if not f.cancel():
                f.result()


def _kernel() -> Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None:
    try:
        import numkong
    except ImportError:
        return None

    def dot(q8: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
        numkong.cdist(q8[None, :], codes, metric="dot", out=out[None, :])
    return dot


class Scores:
    """The int8 scores of one probe and the maximum of each ``BLOCK`` rows (views of the scanner's buffers)."""

    def __init__(self, approx: np.ndarray, maxima: np.ndarray, best: np.ndarray | None = None) -> None:
        self.approx, self.maxima, self.best = approx, maxima, best  # best: the row of each block's maximum, if known

    def __len__(self) -> int:
        return len(self.approx)

    def at_least(self, x: float) -> np.ndarray:
        """Rows (ascending) whose score is ``>= x``; only blocks whose maximum reaches ``x`` are read."""
        blocks = np.flatnonzero(self.maxima >= x)
        if len(blocks) * BLOCK * 4 > len(self.approx):
            return np.flatnonzero(self.approx >= x)
        rows = (blocks[:, None] * BLOCK + np.arange(BLOCK)).ravel()
        if len(blocks) and blocks[-1] == len(self.maxima) - 1:
            rows = rows[rows < len(self.approx)]
        return rows[self.approx[rows] >= x]

    def top(self, c: int) -> np.ndarray:
        """At least ``c`` rows (ascending) including the ``c`` largest scores.

        The ``c``-th largest block maximum is at most the ``c``-th largest score (each of
        the ``c`` best blocks holds a score at least that high), so every row scoring at
        least that maximum is taken: the ``c`` best among them.
        """
        n, b = len(self.approx), len(self.maxima)
        if c >= n:
            return np.arange(n)
        if c >= b:
            return np.sort(np.argpartition(self.approx, n - c)[n - c:])
        return self.at_least(float(np.partition(self.maxima, b - c)[b - c]))

    def seeds(self, c: int) -> np.ndarray:
        """``c`` rows (ascending) with high scores, cheaply: the best row of each of the ``c`` best blocks.

        Not always the ``c`` largest scores (a block can hold two of them): for a first floor
        of exact scores, which any rows give. Without each block's best row: :meth:`top`.
        """
        b = len(self.maxima)
        if self.best is None or c >= b:
            return self.top(c)
        return np.sort(self.best[np.argpartition(self.maxima, b - c)[b - c:]])


class Int8Scanner:
    """Scores one probe against int8 codes into reusable buffers (not thread-safe: lock around it).

    A large scan is cut into chunks (four per thread, at least ``CHUNK`` rows) that the
    calling thread and ``threads - 1`` helper threads (a process-wide pool; the kernel
    releases the GIL) take in turn until none is left, so a helper that starts late, or
    a core that is busy, costs at most one chunk's wait. Each chunk also writes the maxima of its
    blocks, so nothing reads the scores a second time to find the best rows.
    """

    def __init__(self, threads: int | None = None) -> None:
        self._dot = _kernel()
        self.threads = threads or scan_threads()
        self._buf = np.zeros(0, np.float32)
        self._max = np.zeros(0, np.float32)

    def scores(self, codes: np.ndarray, q: np.ndarray) -> tuple[Scores, float]:
        """int8 dot products of ``q`` with every row (in units of ``1 / SCALE**2``), and ``|q - q8|``."""
        q8, rq = quantize(q[None, :])
        n = len(codes)
        if len(self._buf) < n:
            cap = max(n, 2 * len(self._buf), 1024)
            self._buf, self._max = np.empty(cap, np.float32), np.empty(-(-cap // BLOCK), np.float32)
        out, maxima = self._buf[:n], self._max[:-(-n // BLOCK)]
        helpers = self.threads - 1 if self._dot is not None and n >= SPLIT_MIN else 0
        step = max(CHUNK, -(-n // (4 * (helpers + 1) * BLOCK)) * BLOCK)
        chunks = itertools.count()  # next() is atomic: each chunk is taken by one thread

        def work() -> None:
            while (lo := next(chunks) * step) < n:
                self._chunk(q8[0], codes, out, maxima, lo, min(lo + step, n))
        run_chunks(work, helpers)
        return Scores(out, maxima), float(rq[0])

    def _chunk(self, q8: np.ndarray, codes: np.ndarray, out: np.ndarray, maxima: np.ndarray,
               lo: int, hi: int) -> None:
        """Scores and block maxima of rows ``lo:hi`` (``lo`` a multiple of ``BLOCK``)."""
        if self._dot is not None:
            self._dot(q8, codes[lo:hi], out[lo:hi])
        else:  # no SIMD kernel installed: numpy in float32 (slower, same result)
            out[lo:hi] = codes[lo:hi].astype(np.float32) @ q8.astype(np.float32)
        full = lo + (hi - lo) // BLOCK * BLOCK
        np.max(out[lo:full].reshape(-1, BLOCK), axis=1, out=maxima[lo // BLOCK:full // BLOCK])
        if full < hi:
            maxima[full // BLOCK] = out[full:hi].max()


def exact_top(scan: Scores, m: int, bound: float, rescore: Callable[[np.ndarray], np.ndarray],
              wide: tuple[np.ndarray, np.ndarray] | None = None,
              finer: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the ``m`` best exact scores, best first, and those scores.

    ``scan``: int8 scores (units of ``1 / SCALE**2``); ``bound``: the most an int8
    score can differ from the exact one (cosine units) for every row but the ``wide``
    ones, given as ``(rows, their own bounds)``; ``finer(rows)``, if given, closer
    scores of particular rows and the most each can differ from the exact one (for
    example ``q . x8``, within ``|q| |x - x8|``), to re-score fewer; ``rescore(rows)``:
    exact float32 scores of ``rows``. Ties are broken by row order.
    """
    n, approx = len(scan), scan.approx
    rows = scan.top(min(n, max(m, RESCORE)))
    exact = rescore(rows)
    if len(rows) < n:
        s_m = np.partition(exact, len(exact) - m)[len(exact) - m] if m <= len(exact) else -np.inf
        extra = scan.at_least((s_m - bound - FLOAT_SLACK) * SCALE * SCALE)
        if wide is not None and len(wide[0]):
            w_rows, w_bounds = wide
            near = approx[w_rows] >= (s_m - w_bounds - FLOAT_SLACK) * SCALE * SCALE
            extra = np.union1d(extra, w_rows[near])
        extra = np.setdiff1d(extra, rows, assume_unique=True)
        if finer is not None and len(extra):
            closer, own = finer(extra)
            extra = extra[closer >= s_m - own - FLOAT_SLACK]
        if len(extra):
            rows, exact = np.concatenate([rows, extra]), np.concatenate([exact, rescore(extra)])
    order = np.lexsort((rows, -exact))[:m]
    return rows[order], exact[order]
