"""The store's two-plane exact scan against the single-plane int8 scan before it and a bare float32 scan.

The gallery is the one of ``search_scale.py`` (1,650 real LFW mates among synthetic
distractors fitted to real templates). Probes: the mates' second images (mated) and,
with ``--strangers``, LFW people with a single image (never enrolled: the hardest case
for a bounded scan, which proves less when nothing scores high). The index is the
SQLite store's :class:`~faceledger.store.memindex.GalleryIndex` holding int8 codes
only; its re-score reads float32 rows from an array (the store decrypts them from the
database instead: ``search_scale.py`` times that whole path). Every method asks for
the top 5 subjects (20 templates, as the store does). Methods:

* the two-plane scan (store/planes.py) with its default threads (``min(2, cores)`` or
  ``$FACELEDGER_SCAN_THREADS``) and with one;
* "before": the single-plane scan of the previous round (every code read with
  numkong's ``cdist``, :class:`~faceledger.store.scan.Int8Scanner` + ``exact_top``);
* a bare numpy float32 scan.

Each probe is searched by every method in turn, so a busy machine slows them alike and
the ratio holds. Also printed: the rows whose plane 2 was read, per probe type, and
the p95 per probe type. Run from the repository root::

    .venv/bin/python bench/exact_scan.py --size 1000000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from _common import md_table, reproduce_command
from identify_lfw import lfw_templates
from search_scale import fit_distractors, make_dataset, real_split, rss_mb

K = 5
STRONG = 0.358  # SFace's fmr1e-3 threshold (search_scale.py): a probe whose best score reaches it has a match


def before_search(vectors: np.ndarray, threads: int):  # noqa: ANN201 - a closure
    """The previous round's exact search: every code scanned, the int8 bound, float32 re-score of the few."""
    from faceledger.store._common import rank_subjects
    from faceledger.store.scan import SCALE, Int8Scanner, exact_top, quantize, wide_residual

    codes, resid = quantize(vectors)
    scanner = Int8Scanner(threads)
    wide = resid > wide_residual(vectors.shape[1])
    max_resid, max_norm = float(resid[~wide].max()), float((1 + resid).max())
    w_rows = np.flatnonzero(wide)

    def search(q: np.ndarray) -> int:
        scan, q_resid = scanner.scores(codes, q)
        bound = max_resid + q_resid * max_norm
        w = (w_rows, resid[w_rows] + q_resid * max_norm) if len(w_rows) else None

        def scores_of(m: int) -> tuple[np.ndarray, np.ndarray]:
            return exact_top(scan, m, bound, lambda r: vectors[r] @ q, w,
                             lambda r: (codes[r].astype(np.float32) @ q / SCALE, resid[r]))
        return rank_subjects(scores_of, lambda t: t, K, len(codes))[0][0]
    return search


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=300, help="mated probes")
    p.add_argument("--strangers", type=int, default=100, help="probes of people never enrolled")
    args = p.parse_args()
    from faceledger.store.memindex import AnnOptions, GalleryIndex

    t = lfw_templates()
    ds = make_dataset(t, fit_distractors(t, 1), args.size)
    people = set(real_split(t)[0])
    strangers = t.vectors[[i for i, person in enumerate(t.people) if person not in people]][:args.strangers]
    probes = np.concatenate([ds.probes[:args.queries], strangers]).astype(np.float32)
    exact = np.concatenate([np.argmax(probes[i:i + 256] @ ds.vectors.T, axis=1) for i in range(0, len(probes), 256)])
    best = np.einsum("ij,ij->i", probes, ds.vectors[exact])
    kind = np.where(np.arange(len(probes)) >= min(args.queries, len(ds.probes)), "stranger",
                    np.where(best >= STRONG, "mated, best >= 0.358", "mated, best < 0.358"))

    rss0 = rss_mb()
    index = GalleryIndex(ds.vectors.shape[1], AnnOptions(), exact=lambda tids: ds.vectors[tids], float32_up_to=0)
    for i in range(0, len(ds.vectors), 100_000):
        ids = np.arange(i, min(i + 100_000, len(ds.vectors)))
        index.add(ids, ids, ds.vectors[ids])
    index.search(probes[:1], K)  # packs plane 1
    mem, held = rss_mb() - rss0, index.nbytes
    threads = index._scanner.threads
    before = before_search(ds.vectors, threads)

    def planes(q: np.ndarray, threads: int = threads) -> int:
        index._scanner.threads = threads
        return index.search(q[None, :], K)[0][0][0]

    def numpy_scan(q: np.ndarray) -> int:
        s = ds.vectors @ q
        top = np.argpartition(-s, 20)[:20]
        return int(top[np.argmax(s[top])])

    methods = {f"FaceLedger two-plane int8 scan + exact float32 re-score ({threads} threads, the default)": planes,
               "the same, 1 thread": lambda q: planes(q, 1),
               f"before: single-plane int8 scan + exact re-score ({threads} threads)": before,
               "bare numpy float32 scan + argpartition (1 thread)": numpy_scan}
    times: dict[str, list[float]] = {m: [] for m in methods}
    same = dict.fromkeys(methods, 0)
    plane2: list[int] = []
    loads = [os.getloadavg()[0]]
    with threadpool_limits(1, "blas"):
        for i, q in enumerate(probes):
            for name, f in methods.items():
                read = index._scanner.plane2_rows
                t0 = time.perf_counter()
                top = f(q)
                times[name].append(time.perf_counter() - t0)
                same[name] += top == exact[i]
                if name.startswith("FaceLedger"):
                    plane2.append(index._scanner.plane2_rows - read)
    loads.append(os.getloadavg()[0])
    n = len(probes)
    rows = []
    for name in methods:
        ms = np.array(times[name]) * 1000
        rows.append([name, f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 95):.2f}", f"{same[name] / n:.4f}"])
    print(f"## Exact search of {args.size:,} templates (top {K} subjects), {n} probes, methods interleaved\n")
    print(md_table(["method", "p50 (ms)", "p95 (ms)", "recall@1 vs exact"], rows))
    first = np.array(times[next(iter(methods))]) * 1000
    frac = np.array(plane2) / len(ds.vectors)
    by_kind = []
    for k in dict.fromkeys(kind.tolist()):
        sel = kind == k
        ms, share = first[sel], 100 * frac[sel]
        by_kind.append([k, f"{sel.sum()}", f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 95):.2f}",
                        f"{share.mean():.2f}", f"{np.percentile(share, 95):.2f}", f"{share.max():.2f}"])
    print(f"\n### The two-plane scan ({threads} threads) by probe type\n")
    print(md_table(["probes", "n", "p50 (ms)", "p95 (ms)", "rows reading plane 2: mean %", "p95 %", "max %"],
                   by_kind))
    print(f"\nIndex: {held / 2**20:,.0f} MB of arrays with plane 1 packed (RSS +{mem:,.0f} MB). "
          f"Load average {loads[0]:.1f} before, {loads[1]:.1f} after (2 cores).")
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
