"""The PostgreSQL store's in-memory search: exact answers, and every process in step with every writer.

Each test opens two stores on one database, as two processes would (their own pools and
their own copies of the gallery); one subprocess test uses a real second process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from storehelp import MODEL, Face, new_template, settings, unit_vectors

from faceledger.errors import ConfigError, InputError, ModelMismatchError, NotFoundError, StoreError
from faceledger.store import BulkSubject, open_store, pg_memory
from faceledger.store.postgres import PostgresStore


@pytest.fixture
def url(new_pg_url: Callable[[], str]) -> str:
    return new_pg_url()


@pytest.fixture
def two(url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """A searcher and a writer on one database (the follower thread off: the tests say when to sync)."""
    a, b = open_store(url, sync_seconds=0), open_store(url, sync_seconds=0)
    yield a, b  # type: ignore[misc]
    a.close()
    b.close()


def enroll(store: PostgresStore, gallery: str, vecs: np.ndarray, prefix: str = "s", create: bool = True) -> list[int]:
    with store.transaction() as tx:
        if create:
            tx.create_gallery(gallery, settings())
        return tx.bulk_enroll(gallery, [BulkSubject(f"{prefix}{i}", [new_template(v, f"{prefix}{i}")])
                                        for i, v in enumerate(vecs)])


def top1(store: PostgresStore, gallery: str, probes: np.ndarray) -> list[int]:
    return [c[0].subject_id if c else -1 for c in store.search(gallery, probes, k=1)]


def gallery_id(url: str, name: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id FROM galleries WHERE name = %s", (name,)).fetchone()[0]  # type: ignore[index]


def test_answers_are_the_exact_top_k_with_rows_re_scored_from_the_database(url: str) -> None:
    vecs = unit_vectors(3000, 1)
    with open_store(url, sync_seconds=0) as store:
        ids = enroll(store, "g", vecs)
        store._memory._float32_up_to = 0  # type: ignore[union-attr]  # re-score from PostgreSQL, as at 1M
        noisy = vecs[:40] + 0.6 * unit_vectors(40, 2)
        probes = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
        got = store.search("g", probes, k=5)
        held = store.index("g")
        assert held._vecs is None  # no float32 copy in memory: the re-score read the database
    scores = probes @ vecs.T
    for q, cands in enumerate(got):
        best = np.argsort(-scores[q], kind="stable")[:5]
        assert [c.subject_id for c in cands] == [ids[i] for i in best]
        assert np.allclose([c.score for c in cands], scores[q][best], atol=1e-5)
        assert [c.rank for c in cands] == [1, 2, 3, 4, 5]


def test_real_faces_find_their_mates(url: str, faces: dict[str, tuple[Face, Face]]) -> None:
    people = list(faces)
    with open_store(url, sync_seconds=0) as store:
        with store.transaction() as tx:
            tx.create_gallery("g", settings())
            ids = [tx.add_subject("g", p).id for p in people]
            for sid, p in zip(ids, people, strict=True):
                tx.add_template(sid, faces[p][0].new())
        got = store.search("g", np.stack([faces[p][1].vector for p in people]), k=3)
    assert [c[0].subject_id for c in got] == ids
    assert [c[0].external_ref for c in got] == people


def test_a_gallery_is_scanned_in_sql_until_the_scans_have_cost_a_read_then_read(url: str) -> None:
    from faceledger.store.pg_memory import SQL_SCANS_PER_READ

    vecs = unit_vectors(300, 12)
    with open_store(url, sync_seconds=0) as w:
        ids = enroll(w, "g", vecs)
        with w.transaction() as tx:
            tx.create_gallery("other-model", settings(model_id="another-model"))
    probes = vecs[[3, 100, 250]] + np.float32(0.02)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    want = [[ids[i] for i in row] for row in np.argsort(-(probes @ vecs.T), axis=1)[:, :5]]  # numpy's exact top 5
    with open_store(url, sync_seconds=0) as s:
        memory = s._memory  # type: ignore[attr-defined]
        answers = []
        for _ in range(SQL_SCANS_PER_READ // len(probes)):  # 4 searches of 3 probes: 12 scans
            answers.append(s.search("g", probes, k=5))
            assert memory.galleries_held == 0  # answered in SQL: nothing read into memory
        answers.append(s.search("g", probes, k=5))  # 3 more would pass the price of a read
        assert memory.galleries_held == 1
        for answer in answers:
            assert [[c.subject_id for c in row] for row in answer] == want
            assert [c.rank for c in answer[0]] == [1, 2, 3, 4, 5]
            assert np.allclose([c.score for c in answer[0]], [c.score for c in answers[-1][0]], atol=1e-5)
        with pytest.raises(NotFoundError):
            s.search("nobody", probes, k=1)  # the same errors by either path
        with pytest.raises(ModelMismatchError):
            s.search("other-model", probes, k=1, model_id=MODEL)
    with open_store(url, sync_seconds=0) as s:
        s.warm("g")  # read: every search is in memory
        assert s.search("g", probes, k=5) == answers[-1] and s._memory.galleries_held == 1  # type: ignore[attr-defined]
    with open_store(url, sync_seconds=0) as s:
        many = vecs[: SQL_SCANS_PER_READ + 1]  # more scans at once than a read costs: read at once
        assert top1(s, "g", many) == ids[: len(many)] and s._memory.galleries_held == 1  # type: ignore[attr-defined]


def test_another_store_s_enrolments_and_erasures_are_seen_by_the_next_search(
        two: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two
    vecs = unit_vectors(60, 3)
    ids = enroll(b, "g", vecs[:50])
    assert top1(a, "g", vecs[:50]) == ids  # a reads the gallery into memory
    new = enroll(b, "g", vecs[50:], prefix="n", create=False)
    assert top1(a, "g", vecs[50:]) == new
    gone = b.list_templates(ids[7])[0].id
    with b.transaction() as tx:
        tx.remove_subject(ids[7])  # cascades to its template: the trigger logs it all the same
        tx.remove_template(b.list_templates(ids[8])[0].id)
    got = a.search("g", vecs[7:9], k=60)
    assert all(c.subject_id not in (ids[7], ids[8]) for cands in got for c in cands)
    index = a.index("g")
    assert gone not in index.template_ids and len(index) == 58
    assert not np.any(index._tids[len(index):] == gone)  # the spare rows hold nothing of it


def test_writes_that_bypass_faceledger_are_followed_too(two: tuple[PostgresStore, PostgresStore], url: str) -> None:
    a, b = two
    vecs = unit_vectors(20, 4)
    ids = enroll(b, "g", vecs)
    assert top1(a, "g", vecs) == ids
    gid = gallery_id(url, "g")
    with psycopg.connect(url) as conn:  # an operator's hand-written SQL, not through the store
        t3, t4 = (conn.execute(f"SELECT id FROM templates_g{gid} WHERE subject_id = %s", (ids[i],)).fetchone()[0]
                  for i in (3, 4))
        conn.execute(f"DELETE FROM templates_g{gid} WHERE id = %s", (t3,))
        conn.execute("UPDATE templates SET embedding = %s::vector WHERE id = %s", (str(vecs[10].tolist()), t4))
    assert top1(a, "g", vecs[3:4]) != [ids[3]]
    both = a.search("g", vecs[10:11], k=2)[0]
    assert {c.subject_id for c in both} == {ids[4], ids[10]} and both[1].score > 0.9999
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE templates")
    assert a.search("g", vecs[:2], k=1) == [[], []]


def test_a_replaced_or_dropped_gallery_is_read_again(two: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = two
    vecs = unit_vectors(30, 5)
    enroll(b, "g", vecs)
    a.search("g", vecs[:1], k=1)
    with b.transaction() as tx:
        tx.set_gallery_model("g", "other-model", 64)
    with pytest.raises(ModelMismatchError):  # the gallery now holds templates of another model
        a.search("g", vecs[:1], k=1, model_id="sface-2021dec-int8bq")
    with pytest.raises(InputError):  # and wants 64-dimensional probes
        a.search("g", vecs[:1], k=1)
    assert a.search("g", unit_vectors(1, 6, dim=64), k=1) == [[]]
    assert a.index("g").dimension == 64
    with b.transaction() as tx:
        tx.delete_gallery("g", cascade=True)
    with pytest.raises(NotFoundError):
        a.search("g", vecs[:1], k=1)
    a.sync()
    assert a._memory.galleries_held == 0  # type: ignore[union-attr]  # the dropped gallery left memory
    ids = enroll(b, "g", vecs[:10])  # the same name again: another gallery
    assert top1(a, "g", vecs[:10]) == ids


def test_a_process_that_missed_pruned_changes_reads_its_galleries_again(
        two: tuple[PostgresStore, PostgresStore], url: str) -> None:
    a, b = two
    vecs = unit_vectors(40, 7)
    ids = enroll(b, "g", vecs[:30])
    assert top1(a, "g", vecs[:30]) == ids
    more = enroll(b, "g", vecs[30:], prefix="m", create=False)
    with b.transaction() as tx:
        tx.remove_subject(ids[0])
    with psycopg.connect(url) as conn:  # a day passes: the writers prune what a has not applied yet
        conn.execute("UPDATE template_changes SET at = now() - interval '2 days'")
        assert pg_memory.prune_changes(conn) > 0
        assert conn.execute("SELECT count(*) FROM template_changes").fetchone()[0] == 0  # type: ignore[index]
    assert top1(a, "g", vecs[30:]) == more
    assert ids[0] not in top1(a, "g", vecs[:1])


def test_many_changes_at_once_read_the_gallery_again(two: tuple[PostgresStore, PostgresStore],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two
    vecs = unit_vectors(200, 8)
    enroll(b, "g", vecs[:100])
    a.search("g", vecs[:1], k=1)
    before = a.index("g")
    monkeypatch.setattr(pg_memory, "RELOAD_MIN", 10)
    more = enroll(b, "g", vecs[100:], prefix="m", create=False)
    assert top1(a, "g", vecs[100:]) == more
    assert a.index("g") is not before  # 100 changes to a gallery of 100: read again, not patched


def test_an_error_half_way_through_a_sync_leaves_nothing_half_applied(
        two: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two
    vecs = unit_vectors(50, 9)
    ids = enroll(b, "g", vecs[:40])
    enroll(b, "h", vecs[:5], prefix="h")
    a.warm("g"), a.warm("h")  # both held
    assert top1(a, "g", vecs[:40]) == ids
    more = enroll(b, "g", vecs[40:], prefix="m", create=False)
    with b.transaction() as tx:
        tx.remove_subject(ids[1])
    real = pg_memory.fetch_rows

    def lost(*args: object) -> object:
        raise psycopg.OperationalError("server closed the connection unexpectedly")
    monkeypatch.setattr(pg_memory, "fetch_rows", lost)
    with pytest.raises(StoreError):
        a.search("h", vecs[:1], k=1)
    monkeypatch.setattr(pg_memory, "fetch_rows", real)
    assert top1(a, "g", vecs[40:]) == more
    assert ids[1] not in top1(a, "g", vecs[1:2])


def test_the_follower_thread_takes_erased_templates_out_of_memory_without_a_search(url: str) -> None:
    vecs = unit_vectors(10, 10)
    with open_store(url, sync_seconds=0.2) as a, open_store(url, sync_seconds=0) as b:
        ids = enroll(b, "g", vecs)
        a.warm("g")
        held = a._memory._indexes[gallery_id(url, "g")]  # type: ignore[union-attr]
        erased = b.list_templates(ids[2])[0].id
        with b.transaction() as tx:
            tx.remove_subject(ids[2])
        deadline = time.monotonic() + 10
        while erased in held.template_ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert erased not in held.template_ids


def test_a_real_second_process_erasing_is_followed(url: str, tmp_path: Path) -> None:
    vecs = unit_vectors(20, 11)
    with open_store(url, sync_seconds=0) as a:
        ids = enroll(a, "g", vecs)
        assert top1(a, "g", vecs) == ids
        child = ("import sys\nfrom faceledger.store import open_store\n"
                 "with open_store(sys.argv[1], sync_seconds=0) as s, s.transaction() as tx:\n"
                 "    tx.remove_subject(int(sys.argv[2]))\n")
        subprocess.run([sys.executable, "-c", child, url, str(ids[5])], check=True, timeout=120)
        assert all(c.subject_id != ids[5] for c in a.search("g", vecs[5:6], k=20)[0])


def test_concurrent_writers_and_searchers_stay_consistent(url: str) -> None:
    import threading

    vecs = unit_vectors(400, 12)
    with open_store(url, sync_seconds=0.05) as a, open_store(url, sync_seconds=0) as b:
        ids = enroll(b, "g", vecs[:200])
        errors: list[BaseException] = []
        stop = threading.Event()

        def search() -> None:
            while not stop.is_set():
                try:
                    for cands in a.search("g", vecs[:4], k=3):
                        assert len(cands) == 3
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return
        searchers = [threading.Thread(target=search) for _ in range(3)]
        for t in searchers:
            t.start()
        added = []
        for i in range(200, 260):
            with b.transaction() as tx:
                added.append(tx.add_subject("g", f"x{i}").id)
                tx.add_template(added[-1], new_template(vecs[i], f"x{i}"))
                tx.remove_subject(ids[i - 200])
        stop.set()
        for t in searchers:
            t.join()
        assert errors == []
        assert top1(a, "g", vecs[200:260]) == added
        assert len(a.index("g")) == 200


@pytest.mark.parametrize(("option", "message"), [
    ({"search": "faiss"}, "search must be one of memory, pgvector"),
    ({"sync_seconds": -1}, "sync_seconds must be a number >= 0"),
    ({"sync_seconds": "often"}, "sync_seconds must be a number >= 0"),
    ({"sync_seconds": float("inf")}, "sync_seconds must be a number >= 0"),
    ({"sync_seconds": float("nan")}, "sync_seconds must be a number >= 0"),
    ({"index": "diskann"}, "index must be one of hnsw, ivfflat, none"),
])
def test_bad_search_options_are_config_errors(option: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(f"postgresql://nobody@/faceledger?host={tmp_path}&connect_timeout=2", **option)


def test_ef_search_is_refused_by_the_exact_search_and_no_pgvector_index_is_built(url: str) -> None:
    vecs = unit_vectors(20, 13)
    with open_store(url, sync_seconds=0, bulk_rebuild_min=10) as store:
        enroll(store, "g", vecs)
        with pytest.raises(InputError, match="ef_search"):
            store.search("g", vecs[:1], k=1, ef_search=100)
        with psycopg.connect(url) as conn:
            indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'templates_g%%_hnsw' "
                                   "OR indexname LIKE 'templates_g%%_ivfflat'").fetchall()
    assert indexes == []


def test_a_template_of_another_dimension_is_a_clear_error(url: str) -> None:
    vecs = unit_vectors(5, 14)
    with open_store(url, sync_seconds=0) as store:
        enroll(store, "g", vecs)
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE templates SET embedding = '[1,0,0]' WHERE subject_id = (SELECT min(id) FROM subjects)")
        with pytest.raises(StoreError, match="128 dimensions"):
            store.search("g", vecs[:1], k=1)


def test_copy_rows_reads_a_large_gallery_in_batches(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    vecs = unit_vectors(2500, 15)
    monkeypatch.setattr(pg_memory, "BATCH", 1000)
    with open_store(url, sync_seconds=0) as store:
        ids = enroll(store, "g", vecs)
        with psycopg.connect(url) as conn:
            batches = list(pg_memory.copy_rows(conn, gallery_id(url, "g"), 128))
        sizes = [len(b[0]) for b in batches]
        assert sum(sizes) == 2500 and len(sizes) >= 3 and min(sizes[:-1]) >= 1000  # read in batches, not at once
        tids = np.concatenate([b[0] for b in batches])
        sids = np.concatenate([b[1] for b in batches])
        got = np.concatenate([b[2] for b in batches])
        order = np.argsort(sids)
        assert sids[order].tolist() == ids and len(set(tids.tolist())) == 2500
        assert np.array_equal(got[order], vecs)


def test_the_url_chooses_the_search_and_the_rest_of_it_still_reaches_libpq(url: str) -> None:
    sep = "&" if "?" in url else "?"
    with open_store(f"{url}{sep}search=pgvector&connect_timeout=5") as store:
        assert store._memory is None  # type: ignore[attr-defined]
        enroll(store, "g", unit_vectors(3, 16))
        assert store.warm("g") == 0  # pgvector holds nothing in this process
        with pytest.raises(NotFoundError):
            store.warm("h")
    with open_store(f"{url}{sep}sync_seconds=0&search=memory") as store:
        assert store._memory is not None and store._memory._follower is None  # type: ignore[attr-defined]
        assert store.gallery_stats("g").templates == 3
    with open_store(f"{url}{sep}search=pgvector", search="memory") as store:  # an option given in code wins
        assert store._memory is not None  # type: ignore[attr-defined]
    for bad, message in (("search=faiss", "search must be one of"), ("sync_seconds=soon", "must be a number")):
        with pytest.raises(ConfigError, match=message):
            open_store(f"{url}{sep}{bad}")


def test_a_failing_prune_does_not_undo_the_writer_s_transaction(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceledger.store import postgres

    def broken(conn: psycopg.Connection) -> int:
        conn.execute("SELECT 1 / 0")  # any error the housekeeping might meet
        return 0
    monkeypatch.setattr(postgres, "prune_changes", broken)
    with open_store(url, sync_seconds=0) as store:
        ids = enroll(store, "g", unit_vectors(3, 17))
        assert [s.id for s in store.list_subjects("g")] == ids  # committed despite the failed prune
