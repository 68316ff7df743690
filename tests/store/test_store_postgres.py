"""PostgreSQL + pgvector specifics: per-gallery HNSW partitions, the shared hash chain, migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest
from storehelp import new_template, settings, unit_vectors

from faceledger.errors import StoreError
from faceledger.store import BulkSubject, open_store
from faceledger.store.postgres import PostgresStore


def bulk(store: PostgresStore, gallery: str, n: int, seed: int) -> list[int]:
    v = unit_vectors(n, seed)
    with store.transaction() as tx:
        tx.create_gallery(gallery, settings())
        return tx.bulk_enroll(gallery, [BulkSubject(f"{gallery}{i}", [new_template(v[i], f"{gallery}{i}")])
                                        for i in range(n)])


def test_a_small_gallery_in_a_big_table_still_gets_k_results(new_pg_url: Callable[[], str]) -> None:
    """A filtered global HNSW scan returns at most ef_search rows before filtering; partitions do not."""
    with open_store(new_pg_url(), ef_search=40, bulk_rebuild_min=1000) as store:
        big = bulk(store, "big", 4000, 1)  # a bulk import this large rebuilds the index after COPY
        small = bulk(store, "small", 25, 2)
        mates = [7, 700, 2000, 3000, 3999]
        noisy = unit_vectors(4000, 1)[mates] + 0.03 * unit_vectors(5, 3)  # probes near a gallery template
        probes = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
        for cands in store.search("small", probes, k=10):
            assert len(cands) == 10 and {c.subject_id for c in cands} <= set(small)
        got = store.search("big", probes, k=10)
        assert all(len(c) == 10 for c in got)
        assert [c[0].subject_id for c in got] == [big[i] for i in mates]
        with store._conn() as conn:
            gid = conn.execute("SELECT id FROM galleries WHERE name = 'big'").fetchone()[0]
            conn.execute("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in conn.execute(
                f"EXPLAIN SELECT id FROM templates_g{gid} ORDER BY embedding::vector(128) <=> %s::vector(128) "
                "LIMIT 10", (probes[0],)))
        assert f"templates_g{gid}_hnsw" in plan


def test_the_hash_chain_is_the_same_as_sqlite(new_pg_url: Callable[[], str], tmp_path: Path) -> None:
    entries = [{"op": "identify", "candidates": [{"ref": "é", "score": 0.73125}], "n": i, "ok": None}
               for i in range(4)]
    rows = {}
    for name, url in (("pg", new_pg_url()), ("sqlite", f"sqlite://{tmp_path / 'fl.db'}")):
        with open_store(url) as store:
            with store.transaction() as tx:
                for e in entries:
                    tx.append_ledger(e)
            rows[name] = list(store.iter_ledger())
    assert rows["pg"] == rows["sqlite"] and len(rows["pg"]) == 4


def test_migrations_are_recorded_and_newer_schemas_refused(new_pg_url: Callable[[], str]) -> None:
    url = new_pg_url()
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1, 2]
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', now())")
    with pytest.raises(StoreError, match="newer"):
        open_store(url)


def test_an_unreachable_server_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_store(f"postgresql://nobody@/faceledger?host={tmp_path}&connect_timeout=2")
