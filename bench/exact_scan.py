"""The store's int8 exact scan against a bare float32 scan, queries interleaved so both see the same load.

The gallery is the one of ``search_scale.py`` (1,650 real LFW mates among synthetic
distractors fitted to real templates). The index is the SQLite store's
:class:`~faceledger.store.memindex.GalleryIndex` holding int8 codes only; its re-score
reads float32 rows from an array (the store decrypts them from the database instead:
``search_scale.py`` times that whole path). It scans with its default number of threads
(``min(2, cores)``, or ``$FACELEDGER_SCAN_THREADS``) and, as a second row, with one.
Each probe is searched by every method in turn, so a busy machine slows them alike and
the ratio holds. Run from the repository root::

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
from search_scale import fit_distractors, make_dataset, rss_mb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=300)
    args = p.parse_args()
    from faceledger.store.memindex import AnnOptions, GalleryIndex

    t = lfw_templates()
    ds = make_dataset(t, fit_distractors(t, 1), args.size)
    exact = ds.exact_top1()
    rows_read: list[int] = []

    def fetch(tids: np.ndarray) -> np.ndarray:
        rows_read.append(len(tids))
        return ds.vectors[tids]

    rss0 = rss_mb()
    index = GalleryIndex(ds.vectors.shape[1], AnnOptions(), exact=fetch, float32_up_to=0)
    for i in range(0, len(ds.vectors), 100_000):
        ids = np.arange(i, min(i + 100_000, len(ds.vectors)))
        index.add(ids, ids, ds.vectors[ids])
    mem = rss_mb() - rss0

    threads = index._scanner.threads

    def int8(q: np.ndarray, threads: int = threads) -> int:
        index._scanner.threads = threads
        return index.search(q[None, :], 5)[0][0][0]

    def numpy_scan(q: np.ndarray) -> int:
        s = ds.vectors @ q
        top = np.argpartition(-s, 20)[:20]
        return int(top[np.argmax(s[top])])

    methods = {f"FaceLedger int8 scan + exact float32 re-score ({threads} threads, the default)": int8,
               "the same, 1 thread": lambda q: int8(q, 1),
               "bare numpy float32 scan + argpartition (1 thread)": numpy_scan}
    times: dict[str, list[float]] = {m: [] for m in methods}
    same = dict.fromkeys(methods, 0)
    loads = [os.getloadavg()[0]]
    with threadpool_limits(1, "blas"):
        for i in range(min(args.queries, len(ds.probes))):
            for name, f in methods.items():
                t0 = time.perf_counter()
                top = f(ds.probes[i])
                times[name].append(time.perf_counter() - t0)
                same[name] += top == exact[i]
    loads.append(os.getloadavg()[0])
    n = len(times[next(iter(methods))])
    rows = []
    for name in methods:
        ms = np.array(times[name]) * 1000
        rows.append([name, f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 95):.2f}", f"{same[name] / n:.4f}"])
    print(f"## Exact search of {args.size:,} templates, {n} mated probes, methods interleaved\n")
    print(md_table(["method", "p50 (ms)", "p95 (ms)", "recall@1 vs exact"], rows))
    # two of the methods search the index (2 threads, 1 thread): rows per search
    print(f"\nIndex: {index.nbytes / 2**20:,.0f} MB of arrays (RSS +{mem:,.0f} MB); float32 rows re-scored per query: "
          f"{sum(rows_read) / (2 * n):.0f} (median call {np.median(rows_read):.0f}). "
          f"Load average {loads[0]:.1f} before, {loads[1]:.1f} after (2 cores).")
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
