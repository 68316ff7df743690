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
  ``$FACELEDGER_SCAN_THREADS``) and with one; its bound is one number per row; its seeds
  are the best rows of the blocks with the best maxima (each chunk finds them as it scans);
  "not kept": the same, but the rows whose bound reaches the floor found, and their plane 2
  read, on the scan's threads, one piece each (``_round4_scan.py``);
* "fourth round's default": the same scan with the fourth round's selection after it
  (seeds by a pass over every row, ``np.isin``; ``_round4_scan.py``), same threads and one;
* "third round": the same scanner with the third round's bound (two per-row terms);
* "fourth round, not kept": the bound folded into the kernel (``_folded_scan.py``);
* "before": the single-plane scan of the previous round (every code read with
  numkong's ``cdist``, :class:`~faceledger.store.scan.Int8Scanner` + ``exact_top``);
* a bare numpy float32 scan.

Each probe is searched by every method in turn, starting with the next method at each
probe (the one after another on the same probe finds its rows in cache), so a busy machine
slows them alike and the ratio holds; the CPU column is the process's CPU time per search (every thread), which
a loaded machine inflates much less than the wall time. Also printed: the rows whose plane
2 was read and the p95 per probe type, and the floor: plane 1's packed kernel alone and a
bare read of as many bytes, on one thread and on the scan's threads, timed between the
searches. Run from the repository root::

    .venv/bin/python bench/exact_scan.py --size 1000000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from _common import md_table, reproduce_command
from _folded_scan import folded_search
from _round4_scan import round4_search, threaded_search
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


def floor_probes(scanner, d1: int) -> dict[str, object]:  # noqa: ANN001 - the index's PlaneScanner
    """What bounds the scan: the packed kernel alone over plane 1, and a bare read of as many bytes.

    Both are cut into the same blocks and run with the store's own helper threads
    (:func:`~faceledger.store.scan.run_chunks`), on one thread and on the scan's threads.
    """
    import itertools

    import numkong

    from faceledger.store.scan import run_chunks

    packed = [p[1] for p in scanner._packed]
    size = sum(p.nbytes for p in packed)
    bare = np.random.default_rng(0).integers(0, 2**63, size // 8, dtype=np.uint64)
    pieces = np.array_split(bare, len(packed))
    q = np.ones((1, d1), np.int8)
    outs = [np.empty((1, p.width), np.int32) for p in packed]

    def run(one, threads: int) -> float:  # noqa: ANN001
        chunks = itertools.count()

        def work() -> None:
            while (j := next(chunks)) < len(packed):
                one(j)
        t0 = time.perf_counter()
        run_chunks(work, threads - 1)
        return time.perf_counter() - t0

    def kernel(j: int) -> None:
        numkong.dots_packed(q, packed[j], out=numkong.from_dlpack(outs[j]))

    def read(j: int) -> None:
        np.bitwise_xor.reduce(pieces[j])
    return {"size": size, "kernel": lambda t: run(kernel, t), "read": lambda t: run(read, t)}


def two_plane_search(vectors: np.ndarray, basis: np.ndarray, threads: int):  # noqa: ANN201 - a closure
    """The third round's two-plane bound (two per-row terms, each with its own weight) on the same rotated gallery.

    Built beside the index with the same scanner, so only the bound differs: ``|x'_2|`` and
    ``|x'_1 - x8_1|`` kept apart (two float32 per row) instead of one bound number.
    """
    from faceledger.store._common import rank_subjects
    from faceledger.store.planes import ROTATE_SLACK, PlaneScanner, Probe, plane1, plane_top
    from faceledger.store.scan import SCALE, quantize

    d1 = plane1(vectors.shape[1])
    codes, codes2, resid, rest, resid1 = [], [], [], [], []
    for i in range(0, len(vectors), 100_000):
        rotated = vectors[i:i + 100_000] @ basis
        c, r = quantize(rotated)
        codes.append(c[:, :d1])
        codes2.append(c[:, d1:])
        resid.append(r)
        rest.append(np.linalg.norm(rotated[:, d1:], axis=1) * np.float32(1 + 1e-6) + np.float32(1e-7))
        resid1.append(np.linalg.norm(rotated[:, :d1] - c[:, :d1] / np.float32(SCALE), axis=1) * np.float32(1 + 1e-6)
                      + np.float32(1e-7))
    codes, codes2 = np.ascontiguousarray(np.concatenate(codes)), np.ascontiguousarray(np.concatenate(codes2))
    resid, rest, resid1 = np.concatenate(resid), np.concatenate(rest), np.concatenate(resid1)
    max_norm = float((np.linalg.norm(vectors, axis=1) + resid).max())
    scanner = PlaneScanner(d1, threads)

    def search(q: np.ndarray) -> int:
        qr = q @ basis
        q_scale = 127 / float(np.abs(qr).max())
        q8 = np.rint(qr * q_scale).astype(np.int8)
        unit, q_norm, q_res = SCALE * q_scale, float(np.linalg.norm(q)), float(np.linalg.norm(qr - q8 / q_scale))
        upper = scanner.upper(codes, q8, [(rest, float(np.linalg.norm(qr[d1:])) * unit), (resid1, q_norm * unit)])

        def own(rows: np.ndarray) -> np.ndarray:
            return q_norm * resid[rows]

        def finer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            both = np.hstack([codes[rows], codes2[rows]])
            return both.astype(np.float32) @ qr / SCALE, own(rows) + ROTATE_SLACK

        probe = Probe(upper, unit, q_res * max_norm + ROTATE_SLACK, lambda r: scanner.full(codes2, r, q8), own,
                      finer, lambda r: vectors[r] @ q)
        return rank_subjects(lambda m: plane_top(probe, m), lambda t: t, K, len(codes))[0][0]
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
    two_terms = two_plane_search(ds.vectors, index._basis, threads)
    folded_read = [0]
    folded = folded_search(ds.vectors, index._basis, threads, K, folded_read)
    folded(probes[0])  # packs its plane 1
    folded_read[0] = 0

    floor = floor_probes(index._scanner, index._scanner.d1)
    floors = {f"{what}, {t} thread{'s' if t > 1 else ''}": (what, t) for what in ("kernel", "read")
              for t in dict.fromkeys((1, threads))}
    floor_times: dict[str, list[float]] = {f: [] for f in floors}

    def planes(q: np.ndarray, threads: int = threads) -> int:
        index._scanner.threads = threads
        return index.search(q[None, :], K)[0][0][0]

    def numpy_scan(q: np.ndarray) -> int:
        s = ds.vectors @ q
        top = np.argpartition(-s, 20)[:20]
        return int(top[np.argmax(s[top])])

    round4 = round4_search(index, K)
    threaded = threaded_search(index, K)
    methods = {f"FaceLedger two-plane int8 scan, seeds from block maxima ({threads} threads, the default)": planes,
               f"fourth round's default: seeds by a pass over every row, np.isin ({threads} threads)": round4,
               f"not kept: the default + the rows reaching the floor found on the scan's threads ({threads} threads)":
               threaded,
               "the default, 1 thread": lambda q: planes(q, 1),
               "fourth round's default, 1 thread": lambda q: round4(q, 1),
               f"third round: the same scan with the two-term bound ({threads} threads)": two_terms,
               f"fourth round, not kept: bound in the kernel, plane 2 in a 2nd parallel pass ({threads} threads)":
               folded,
               f"before: single-plane int8 scan + exact re-score ({threads} threads)": before,
               "bare numpy float32 scan + argpartition (1 thread)": numpy_scan}
    times: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    same = dict.fromkeys(methods, 0)
    plane2: list[int] = []
    loads = [os.getloadavg()[0]]
    with threadpool_limits(1, "blas"):
        for i, q in enumerate(probes):
            order = list(methods.items())
            for name, f in order[i % len(order):] + order[:i % len(order)]:  # each method first as often
                read = index._scanner.plane2_rows
                c0, t0 = time.process_time(), time.perf_counter()
                top = f(q)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                same[name] += top == exact[i]
                if name.startswith("FaceLedger"):
                    plane2.append(index._scanner.plane2_rows - read)
            for name, (what, t) in floors.items():
                floor_times[name].append(floor[what](t))  # type: ignore[operator]
    loads.append(os.getloadavg()[0])
    n = len(probes)
    rows = []
    for name in methods:
        ms = np.array(times[name]) * 1000
        rows.append([name, f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 95):.2f}",
                     f"{np.median(cpu[name]) * 1000:.1f}", f"{same[name] / n:.4f}"])
    print(f"## Exact search of {args.size:,} templates (top {K} subjects), {n} probes, methods interleaved\n")
    print(md_table(["method", "p50 (ms)", "p95 (ms)", "CPU, all threads, median (ms)", "recall@1 vs exact"], rows))
    first = np.array(times[next(iter(methods))]) * 1000
    frac = np.array(plane2) / len(ds.vectors)
    by_kind = []
    for k in dict.fromkeys(kind.tolist()):
        sel = kind == k
        ms, share = first[sel], 100 * frac[sel]
        by_kind.append([k, f"{sel.sum()}", f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 95):.2f}",
                        f"{share.mean():.2f}", f"{np.percentile(share, 95):.2f}", f"{share.max():.2f}"])
    print(f"\nThe bound in the kernel read plane 2 for {100 * folded_read[0] / n / len(ds.vectors):.2f}% of rows "
          "on average (every probe).")
    print(f"\n### The two-plane scan ({threads} threads) by probe type\n")
    print(md_table(["probes", "n", "p50 (ms)", "p95 (ms)", "rows reading plane 2: mean %", "p95 %", "max %"],
                   by_kind))
    size = floor["size"]
    print(f"\n### The floor: plane 1's packed kernel alone, and a bare read of its {size / 1e6:.0f} MB (same run)\n")
    f_rows = []
    for name, (what, _) in floors.items():
        ms = np.array(floor_times[name]) * 1000
        label = "numkong dots_packed over plane 1 (no bounds)" if what == "kernel" else "bare read (numpy xor-reduce)"
        p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
        f_rows.append([f"{label}, {name.split(', ')[1]}", f"{p50:.2f}", f"{p95:.2f}", f"{size / p50 / 1e6:.1f}"])
    print(md_table(["pass over every row", "p50 (ms)", "p95 (ms)", "GB/s at p50"], f_rows))
    print(f"\nIndex: {held / 2**20:,.0f} MB of arrays with plane 1 packed (RSS +{mem:,.0f} MB). "
          f"Load average {loads[0]:.1f} before, {loads[1]:.1f} after (2 cores).")
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    main()
