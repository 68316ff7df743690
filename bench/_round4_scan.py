"""The fourth round's two-plane scan, and a variant not kept, timed by ``exact_scan.py`` beside the default.

The same scanner and bound as :mod:`faceledger.store.planes`, with the fourth round's
selection of rows after the scan: each chunk writes its blocks' maxima with ``np.max``
(no row of each maximum), the seeds are the ``SEED`` best upper bounds found by a pass
over every row (:meth:`~faceledger.store.scan.Scores.top`), and the rows already scored
are dropped with ``np.isin``. It reads plane 1's packed blocks of the index it is given
(no copy), so the two differ only in that selection.
"""

from __future__ import annotations

import numpy as np

from faceledger.store.planes import SEED, PlaneScanner, Probe, best_rows, not_scored, settle
from faceledger.store.scan import BLOCK, FLOAT_SLACK, RESCORE, Scores


class Round4Scanner(PlaneScanner):
    """:class:`PlaneScanner` with the fourth round's block maxima (``np.max``, no best row)."""

    def upper(self, codes: np.ndarray, q8: np.ndarray, terms: list[tuple[np.ndarray, float]]) -> Scores:
        s = super().upper(codes, q8, terms)
        return Scores(s.approx, s.maxima)

    def _block_maxima(self, lo: int, hi: int) -> None:
        upper = self._upper[lo:hi]
        full = (hi - lo) // BLOCK * BLOCK
        np.max(upper[:full].reshape(-1, BLOCK), axis=1, out=self._max[lo // BLOCK:(lo + full) // BLOCK])
        if full < hi - lo:
            self._max[(lo + full) // BLOCK] = upper[full:].max()


def round4_top(p: Probe, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The fourth round's ``plane_top`` (seeds by :meth:`Scores.top`, ``np.isin``)."""
    n, u = len(p.upper), p.unit
    seed = p.upper.top(min(n, max(SEED, m)))
    first = seed[np.argsort(-p.full(seed), kind="stable")[:max(m, RESCORE)]]
    exact = p.rescore(first)
    if len(first) < m:
        maybe, s = np.arange(n), -np.inf
    else:
        s = float(np.partition(exact, len(exact) - m)[len(exact) - m]) - FLOAT_SLACK
        maybe = p.upper.at_least((s - p.slack) * u)
    maybe = maybe[p.full(maybe) >= (s - p.slack - p.own(maybe)) * u]
    return best_rows(*settle(p, first, exact, maybe[~np.isin(maybe, first)], s), m)


def round4_search(index, k: int):  # noqa: ANN001, ANN201 - the bench's GalleryIndex; a closure
    """Search ``index`` (packed already) as the fourth round did, sharing its packed plane 1."""
    from faceledger.store._common import rank_subjects

    own = index._scanner
    old = Round4Scanner(own.d1, own.threads)
    old._packed, old._steady = own._packed, own._steady

    def search(q: np.ndarray, threads: int = own.threads) -> int:
        n = len(index)
        old.threads = threads
        mine, index._scanner = index._scanner, old  # the probe's plane 2 reads go through it too
        try:
            probe = index._plane_probe(q, n, lambda r: np.einsum("ij,j->i", index._rows_float(r), q))

            def scores_of(m: int) -> tuple[np.ndarray, np.ndarray]:
                rows, scores = round4_top(probe, m)
                return index._tids[rows], scores
            return rank_subjects(scores_of, index.subject_of, k, n)[0][0]
        finally:
            index._scanner = mine
    return search


def threaded_search(index, k: int):  # noqa: ANN001, ANN201 - the bench's GalleryIndex; a closure
    """The default, but the rows whose bound reaches the floor found, and their plane 2 read, on the scan's threads.

    Built and not kept (loaded machine: no faster, 0.3-0.7 ms more CPU a search); a peer so an
    idle run shows whether it pays with both cores free. Same answers as ``plane_top``.
    """
    import itertools

    from faceledger.store._common import rank_subjects
    from faceledger.store.planes import SPLIT_MIN
    from faceledger.store.scan import run_chunks

    scanner = index._scanner
    threads = scanner.threads

    def reach(upper: Scores, x: float, plane2: np.ndarray, q8: np.ndarray, keep) -> np.ndarray:  # noqa: ANN001
        n = len(upper)
        pieces = scanner.threads if n >= SPLIT_MIN else 1
        step = -(-n // (pieces * BLOCK)) * BLOCK
        found: list[np.ndarray] = [np.zeros(0, np.int64)] * pieces
        taken = itertools.count()

        def work() -> None:
            while (j := next(taken)) < pieces:
                lo, hi = j * step, min(n, (j + 1) * step)
                rows = Scores(upper.approx[lo:hi], upper.maxima[lo // BLOCK:-(-hi // BLOCK)]).at_least(x) + lo
                found[j] = rows[keep(rows, scanner.full(plane2, rows, q8))]
        run_chunks(work, pieces - 1)
        return np.concatenate(found)

    def top(p: Probe, m: int, q8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, u = len(p.upper), p.unit
        seed = p.upper.seeds(min(n, max(SEED, m)))
        first = seed[np.argsort(-p.full(seed), kind="stable")[:max(m, RESCORE)]]
        exact = p.rescore(first)
        s = -np.inf if len(first) < m else float(np.partition(exact, len(exact) - m)[len(exact) - m]) - FLOAT_SLACK
        f = s - p.slack
        maybe = reach(p.upper, f * u, index._codes2, q8, lambda rows, full: full >= (f - p.own(rows)) * u)
        return best_rows(*settle(p, first, exact, not_scored(maybe, first), s), m)

    def search(q: np.ndarray) -> int:
        n = len(index)
        scanner.threads = threads  # shared with the default, which the bench also runs on one thread
        probe = index._plane_probe(q, n, lambda r: np.einsum("ij,j->i", index._rows_float(r), q))
        qr = q if index._basis is None else q @ index._basis
        q8 = np.rint(qr * (127 / max(float(np.abs(qr).max()), 1e-30))).astype(np.int8)

        def scores_of(m: int) -> tuple[np.ndarray, np.ndarray]:
            rows, scores = top(probe, m, q8)
            return index._tids[rows], scores
        return rank_subjects(scores_of, index.subject_of, k, n)[0][0]
    return search
