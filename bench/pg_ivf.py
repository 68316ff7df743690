"""The alternatives to the store's HNSW index that ``pg_scale.py`` times beside it (issue 16).

* **IVFFlat** (pgvector): each variant is a side table ``ivf_<type>_l<lists>`` holding the
  gallery partition's rows (``id``, ``subject_id``, ``v vector(dim)``) with one IVFFlat cosine
  index, so the planner has exactly one index to use and the kept HNSW index is left alone. The
  build time is kept in the table's comment, so later runs report it without rebuilding. A
  ``halfvec`` variant indexes ``v::halfvec(dim)`` and re-ranks its top rows by the exact
  ``vector`` distance.
* **Binary quantization + exact re-rank**: an upper bound computed in numpy (the exact Hamming
  top L of ``binary_quantize`` codes, re-ranked in float32), so no index is built for an idea the
  bound already rules out: any index over the codes returns at best those L rows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["IvfVariant", "bq_rerank_recall", "ensure_side", "exact_sql_search", "hnsw_sql_search", "ivf_search",
           "parse_variants"]


@dataclass(frozen=True, slots=True)
class IvfVariant:
    """One IVFFlat index: over ``vector`` or ``halfvec``, with ``lists`` lists."""

    kind: str  # "vector" or "halfvec"
    lists: int

    @property
    def table(self) -> str:
        return f"ivf_{self.kind}_l{self.lists}"


def parse_variants(spec: str) -> list[IvfVariant]:
    """``"vector:1000,halfvec:1000"`` -> variants; an empty string -> none."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, lists = item.partition(":")
        if kind not in ("vector", "halfvec") or not lists.isdigit() or not 1 <= int(lists) <= 32768:
            raise SystemExit(f"--ivfflat: '{item}' is not vector:<lists> or halfvec:<lists> (lists 1-32768)")
        out.append(IvfVariant(kind, int(lists)))
    return out


def ensure_side(conn, partition: str, dim: int, v: IvfVariant, build_memory: str) -> str:  # noqa: ANN001
    """Create the variant's side table and index unless kept from an earlier run; its description."""
    exists = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (v.table,)).fetchone() \
        if conn.execute("SELECT to_regclass(%s)", (v.table,)).fetchone()[0] else None
    if exists is None or not exists[0]:
        print(f"{time.strftime('%H:%M:%S')} building {v.table} (IVFFlat, {v.lists} lists on {v.kind})...",
              file=sys.stderr)
        conn.execute(f"DROP TABLE IF EXISTS {v.table}")
        conn.execute(f"CREATE TABLE {v.table} AS SELECT id, subject_id, embedding::vector({dim}) AS v "
                     f"FROM {partition}")
        conn.execute(f"SET maintenance_work_mem = '{build_memory}'")
        t0 = time.perf_counter()
        key = "v vector_cosine_ops" if v.kind == "vector" else f"(v::halfvec({dim})) halfvec_cosine_ops"
        conn.execute(f"CREATE INDEX {v.table}_ivf ON {v.table} USING ivfflat ({key}) WITH (lists = {v.lists})")
        seconds = time.perf_counter() - t0
        conn.execute(f"VACUUM ANALYZE {v.table}")
        conn.execute(f"COMMENT ON TABLE {v.table} IS 'IVFFlat build {seconds:.0f} s'")
    (comment,) = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (v.table,)).fetchone()
    (size,) = conn.execute("SELECT pg_relation_size(%s)", (f"{v.table}_ivf",)).fetchone()
    conn.execute(f"SELECT count(*) FROM {v.table}")  # into shared buffers
    return f"IVFFlat {v.lists} lists on {v.kind}, index {size / 2**20:,.0f} MB, {comment}"


def ivf_search(conn, v: IvfVariant, dim: int, probes: int) -> Callable[[np.ndarray], str]:  # noqa: ANN001
    """A search over the side table: top 5 by the index (20 for halfvec), re-ranked exactly; the best's ref."""
    if v.kind == "vector":
        inner = f"SELECT subject_id, v <=> %(q)s AS d FROM {v.table} ORDER BY v <=> %(q)s LIMIT 5"
    else:
        inner = (f"SELECT subject_id, v <=> %(q)s AS d FROM {v.table} "
                 f"ORDER BY v::halfvec({dim}) <=> %(q)s::halfvec({dim}) LIMIT 20")
    query = (f"SELECT s.external_ref FROM ({inner}) t JOIN subjects s ON s.id = t.subject_id "
             "ORDER BY t.d LIMIT 1")

    def search(q: np.ndarray) -> str:
        with conn.transaction():
            conn.execute("SELECT set_config('ivfflat.probes', %s, true)", (str(probes),))
            return conn.execute(query, {"q": q}).fetchone()[0]
    return search


def hnsw_sql_search(conn, partition: str, dim: int, ef: int) -> Callable[[np.ndarray], str]:  # noqa: ANN001
    """The store's HNSW index through the same SQL as :func:`ivf_search` (no store code), for a like-for-like row."""
    query = (f"SELECT s.external_ref FROM (SELECT subject_id, embedding::vector({dim}) <=> %(q)s AS d "
             f"FROM {partition} ORDER BY embedding::vector({dim}) <=> %(q)s LIMIT 5) t "
             "JOIN subjects s ON s.id = t.subject_id ORDER BY t.d LIMIT 1")

    def search(q: np.ndarray) -> str:
        with conn.transaction():
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
            return conn.execute(query, {"q": q}).fetchone()[0]
    return search


def exact_sql_search(conn, partition: str, dim: int) -> Callable[[np.ndarray], str]:  # noqa: ANN001
    """PostgreSQL's exact answer: a (parallel) sequential scan of the partition, index scans off."""
    query = (f"SELECT s.external_ref FROM (SELECT subject_id, embedding::vector({dim}) <=> %(q)s AS d "
             f"FROM {partition} ORDER BY 2 LIMIT 5) t JOIN subjects s ON s.id = t.subject_id ORDER BY t.d LIMIT 1")

    def search(q: np.ndarray) -> str:
        with conn.transaction():
            conn.execute("SET LOCAL enable_indexscan = off")
            return conn.execute(query, {"q": q}).fetchone()[0]
    return search


def bq_rerank_recall(vectors: np.ndarray, probes: np.ndarray, exact: np.ndarray, limits: list[int]) -> list[float]:
    """Recall@1 of "exact Hamming top L of binary_quantize codes, re-ranked in float32", per L."""
    codes = np.packbits(vectors > 0, axis=1)
    popcount = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.uint16)
    found = np.zeros(len(limits))
    for q, best in zip(probes, exact, strict=True):
        hamming = popcount[np.bitwise_xor(codes, np.packbits(q > 0))].sum(1)
        rank = int((hamming < hamming[best]).sum())  # rows strictly closer in Hamming; ties break our way
        found += [rank < lim for lim in limits]
    return (found / len(probes)).tolist()
