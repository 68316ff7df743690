"""The PostgreSQL store's in-memory search at a million templates while another process writes.

Uses the gallery kept by ``pg_scale.py`` (``--pg-dir``; build it there first). A writer
*process* (as another application server would) opens its own store and enrolls one subject
per transaction (subject, template, ledger entry) at ``--rates`` per second, erasing one of
the subjects it added after every ``--erase-every`` enrollments; this process searches with
the store's default search (the gallery in memory, following the change log) and times the
mated probes one at a time, each search applying whatever the writer committed before it.

Per rate, one row: search p50 / p95, recall@1 against exact search of the kept gallery (the
written templates are random unit vectors, far from every probe), the writer's commits per
second, and visibility: after each of its commits the writer sends the new subject's vector,
and the searcher's next search for it must return that subject first; an erased subject must
never come back. At the end the searcher's in-memory template ids must equal the database's,
and the written subjects are removed again, so the kept gallery keeps its size::

    .venv/bin/python bench/pg_follow.py --pg-dir /work/scale/pg1m
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import sys
import time
from pathlib import Path

import numpy as np

from _common import md_table, reproduce_command
from identify_lfw import lfw_templates
from pg_scale import GALLERY, loaded_size, server_at, stop
from search_scale import fit_distractors, make_dataset

PREFIX = "follow-"


def writer(url: str, rate: float, stop_at: float, erase_every: int, out: mp.Queue, tag: str) -> None:
    """Enroll at ``rate`` per second until ``stop_at`` (``time.time()``); send each commit, then a summary."""
    from faceledger.store import NewTemplate, open_store

    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    store = open_store(url, search="pgvector", max_size=1)
    model = store.get_gallery(GALLERY).model_id
    added: list[int] = []
    commits, latencies, i = 0, [], 0
    next_at = started = time.time()
    while time.time() < stop_at:
        time.sleep(max(0.0, next_at - time.time()))
        next_at += 1 / rate
        v = rng.standard_normal(128).astype(np.float32)
        v /= np.linalg.norm(v)
        t0 = time.perf_counter()
        with store.transaction() as tx:
            sid = tx.add_subject(GALLERY, f"{PREFIX}{tag}-{i}").id
            tx.add_template(sid, NewTemplate(v, model, f"{i:064x}", {"size": 100.0}))
            tx.append_ledger({"operation": "bench_follow_enroll", "subject_id": sid})
            erased = None
            if erase_every and (i + 1) % erase_every == 0 and added:
                erased = added.pop(0)
                tx.remove_subject(erased)
                tx.append_ledger({"operation": "bench_follow_erase", "subject_id": erased})
        latencies.append(time.perf_counter() - t0)
        added.append(sid)
        commits += 1
        i += 1
        out.put(("commit", sid, v, erased))
    store.close()
    out.put(("done", commits, float(np.percentile(np.array(latencies) * 1000, 95)) if latencies else 0.0,
             time.time() - started))


def run_rate(memory, url: str, ds, exact: np.ndarray, rate: float, args: argparse.Namespace) -> list[str]:  # noqa: ANN001
    """One row: search while a writer process enrolls (and erases) at ``rate`` per second."""
    row_of = {ref: i for i, ref in enumerate(ds.refs)}
    out: mp.Queue = mp.get_context("spawn").Queue()
    proc = None
    if rate > 0:
        stop_at = time.time() + 2.0 + args.seconds  # after its imports, as long as the searcher
        proc = mp.get_context("spawn").Process(target=writer, args=(url, rate, stop_at, args.erase_every, out,
                                                                    f"{rate:g}-{os.getpid()}"))
        proc.start()
        time.sleep(2.0)  # the writer's imports
    times, hits, seen, missed, back, erased_ids = [], 0, 0, 0, 0, set()
    summary: tuple[int, float, float] | None = None if rate > 0 else (0, 0.0, 1.0)
    deadline = time.time() + args.seconds
    i = 0
    while (rate > 0 and time.time() < deadline) or (rate == 0 and i < args.queries):
        q = ds.probes[i % len(ds.probes)]
        t0 = time.perf_counter()
        top = memory.search(GALLERY, q, k=5)[0][0]
        times.append(time.perf_counter() - t0)
        hits += row_of.get(top.external_ref, -1) == exact[i % len(ds.probes)]
        i += 1
        latest = None
        while True:
            try:
                msg = out.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "done":
                summary = msg[1:]
            elif msg[0] == "commit":
                latest = msg
                if msg[3] is not None:
                    erased_ids.add(msg[3])
        if latest is not None:  # the peer's last commit, visible to this process's next search
            seen += 1
            found = memory.search(GALLERY, latest[2], k=3)[0]
            missed += not found or found[0].subject_id != latest[1]
            back += any(c.subject_id in erased_ids for c in found)
    while summary is None:  # the writer's last commits and its summary
        msg = out.get(timeout=120)
        summary = msg[1:] if msg[0] == "done" else None
    if proc is not None:
        proc.join(30)
    ms = np.array(times) * 1000
    return [f"{rate:g}" if rate else "none (searcher alone)", str(len(ms)), f"{np.percentile(ms, 50):.2f}",
            f"{np.percentile(ms, 95):.2f}", f"{hits / len(ms):.4f}",
            f"{summary[0]} ({summary[0] / summary[2]:.1f}/s), p95 {summary[1]:.1f} ms" if rate else "—",
            f"{seen - missed} of {seen}" if rate else "—", str(back) if rate else "—", f"{os.getloadavg()[0]:.1f}"]


def cleanup(url: str) -> int:
    """Remove the subjects the writers added; how many."""
    from faceledger.store import open_store

    with open_store(url, search="pgvector") as store:
        with store._conn() as conn:
            ids = [r[0] for r in conn.execute("SELECT s.id FROM subjects s JOIN galleries g ON g.id = s.gallery_id "
                                              "WHERE g.name = %s AND s.external_ref LIKE %s", (GALLERY, PREFIX + "%"))]
        with store.transaction() as tx:
            for sid in ids:
                tx.remove_subject(sid)
            tx.append_ledger({"operation": "bench_follow_cleanup", "removed": len(ids)})
    return len(ids)


def in_step(memory, url: str) -> bool:  # noqa: ANN001
    """The searcher's in-memory template ids equal the database's."""
    import psycopg

    with psycopg.connect(url) as conn:
        gid = conn.execute("SELECT id FROM galleries WHERE name = %s", (GALLERY,)).fetchone()[0]
        db = {r[0] for r in conn.execute(f"SELECT id FROM templates_g{gid}")}
    return memory.index(GALLERY).template_ids == db


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-dir", type=Path, required=True, help="the data directory pg_scale.py built")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--rates", default="0,2,20", help="enrollments per second of the writer process (0: none)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long each rate runs")
    p.add_argument("--queries", type=int, default=600, help="probes of the row without a writer")
    p.add_argument("--erase-every", type=int, default=5, help="erase one written subject after this many (0: never)")
    p.add_argument("--shared-buffers", default="3GB")
    args = p.parse_args()
    from faceledger.store import open_store

    t = lfw_templates()
    ds = make_dataset(t, fit_distractors(t, 1), args.size)
    exact = ds.exact_top1()
    server = server_at(args.pg_dir, args.shared_buffers)
    try:
        url = server.get_uri()
        memory = open_store(url, max_size=2)  # the default search, its follower thread on
        if loaded_size(memory) < args.size:
            raise SystemExit(f"{args.pg_dir} does not hold the {args.size:,}-template gallery: build it with "
                             "pg_scale.py --build-only")
        cleanup(url)
        t0 = time.perf_counter()
        memory.index(GALLERY)
        load_s = time.perf_counter() - t0
        for q in ds.probes[-20:]:
            memory.search(GALLERY, q, k=5)
        rows = [run_rate(memory, url, ds, exact, float(r), args) for r in args.rates.split(",") if r]
        ok = in_step(memory, url)
        removed = cleanup(url)
        ok_after = in_step(memory, url)
        memory.close()
    finally:
        stop(server)
    print(f"## The in-memory search at {args.size:,} templates while another process writes "
          f"({args.seconds:g} s per rate; one erasure per {args.erase_every} enrollments)\n")
    print(md_table(["writer enrollments/s", "searches", "p50 (ms)", "p95 (ms)", "recall@1 vs exact",
                    "writer commits, p95 commit", "writer's last commit found by the next search",
                    "erased subjects returned", "load avg"], rows))
    print(f"\nGallery read in {load_s:.1f} s. In-memory ids equal to the database's after the writers: {ok}; "
          f"after removing the {removed} written subjects again: {ok_after}.")
    print(f"\nReproduce: `{reproduce_command()}`")


if __name__ == "__main__":
    sys.exit(main())
