"""PostgreSQL + pgvector specifics: per-gallery HNSW (or IVFFlat) partitions, the shared hash chain, migrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest
from storehelp import Face, new_template, settings, unit_vectors

from faceledger.errors import ConfigError, StoreError
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
    with open_store(new_pg_url(), search="pgvector", ef_search=40, bulk_rebuild_min=1000) as store:
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
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1, 2, 3]
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', now())")
    with pytest.raises(StoreError, match="newer"):
        open_store(url)


def test_an_unreachable_server_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_store(f"postgresql://nobody@/faceledger?host={tmp_path}&connect_timeout=2")


# -- the IVFFlat index option ------------------------------------------------------------------
def vector_indexes(store: PostgresStore, gallery: str) -> list[tuple[str, str, list[str] | None]]:
    """(name, access method, options) of the vector indexes on the gallery's partition."""
    with store._conn() as conn:
        gid = conn.execute("SELECT id FROM galleries WHERE name = %s", (gallery,)).fetchone()[0]
        return conn.execute("SELECT c.relname, am.amname, c.reloptions FROM pg_index i "
                            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                            "WHERE i.indrelid = %s::regclass AND am.amname IN ('hnsw', 'ivfflat')",
                            (f"templates_g{gid}",)).fetchall()


@pytest.mark.parametrize(("option", "message"), [
    ({"index": "annoy"}, "index must be one of hnsw, ivfflat"),
    ({"lists": -1}, "lists must be an integer in"),
    ({"lists": 40_000}, "lists must be an integer in"),
    ({"lists": True}, "lists must be an integer in"),
    ({"probes": 0}, "probes must be an integer in"),
    ({"probes": "8"}, "probes must be an integer in"),
])
def test_bad_index_options_are_config_errors(option: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(f"postgresql://nobody@/faceledger?host={tmp_path}&connect_timeout=2", **option)


def test_an_ivfflat_gallery_scans_exactly_until_a_bulk_import_trains_its_index(
        new_pg_url: Callable[[], str], faces: dict[str, tuple[Face, Face]]) -> None:
    url = new_pg_url()
    people = list(faces)
    real_probes = np.stack([faces[p][1].vector for p in people])
    with open_store(url, search="pgvector", index="ivfflat", lists=8, probes=8, bulk_rebuild_min=1000) as store:
        with store.transaction() as tx:
            tx.create_gallery("g", settings())
            ids = [tx.add_subject("g", p).id for p in people]
            for sid, p in zip(ids, people, strict=True):
                tx.add_template(sid, faces[p][0].new())
        assert vector_indexes(store, "g") == []  # nothing to train lists on: searches scan exactly
        assert [c[0].subject_id for c in store.search("g", real_probes, k=3)] == ids

        distractors = unit_vectors(5000, 11)
        with store.transaction() as tx:  # >= bulk_rebuild_min and >= the partition: trains the index
            tx.bulk_enroll("g", [BulkSubject(f"d{i}", [new_template(v, f"d{i}")]) for i, v in enumerate(distractors)])
        [(name, kind, opts)] = vector_indexes(store, "g")
        assert (name.endswith("_ivfflat"), kind, opts) == (True, "ivfflat", ["lists=8"])

        # Probes at cosine 0.6 to 200 distractors: hard for an index, easy for an exact scan.
        noise = unit_vectors(200, 12)
        hard = 0.6 * distractors[:200] + 0.8 * (noise - (noise * distractors[:200]).sum(1, keepdims=True)
                                                 * distractors[:200])
        hard = (hard / np.linalg.norm(hard, axis=1, keepdims=True)).astype(np.float32)
        exact = [c[0].subject_id for c in store.search("g", hard, k=1, exact=True)]
        every_list = [c[0].subject_id for c in store.search("g", hard, k=1)]  # probes = lists: exact
        assert every_list == exact
        assert [c[0].subject_id for c in store.search("g", real_probes, k=3)] == ids
    with open_store(url, search="pgvector", index="ivfflat", probes=1) as one_list:
        found = [c[0].subject_id for c in one_list.search("g", hard, k=1)]
    recall = np.mean(np.array(found) == np.array(exact))
    assert 0.1 < recall < 1.0  # the index answered (one list of eight), so some mates were missed
