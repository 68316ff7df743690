"""SQLite store specifics: encryption at rest, keys, erasure, corruption, migrations, cross-process sync."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from storehelp import PEOPLE, new_template, settings, unit_vectors

from faceledger.errors import DataKeyError, StoreError
from faceledger.store import AnnOptions, open_store
from faceledger.store.sqlite import SqliteStore


def enroll(store: SqliteStore, vectors: np.ndarray, gallery: str = "staff", prefix: str = "s") -> list[int]:
    ids = []
    with store.transaction() as tx:
        if gallery not in {g.name for g in store.list_galleries()}:
            tx.create_gallery(gallery, settings())
        for i, v in enumerate(vectors):
            s = tx.add_subject(gallery, f"{prefix}{i}")
            tx.add_template(s.id, new_template(v, f"{prefix}{i}"))
            ids.append(s.id)
        tx.append_ledger({"op": "enroll", "n": len(vectors)})
    return ids


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- keys --------------------------------------------------------------------------------
def test_key_file_is_created_private_next_to_the_database(tmp_path: Path) -> None:
    db = tmp_path / "data" / "fl.db"
    SqliteStore(db).close()
    key = db.with_name("fl.db.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(db.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key.read_text().strip())) == 32


def test_wrong_missing_or_exposed_key_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    with SqliteStore(db) as store:
        enroll(store, unit_vectors(3, 0))
    before = file_digest(db)
    key = db.with_name("fl.db.key")
    other = tmp_path / "other.key"
    other.write_text(os.urandom(32).hex())
    other.chmod(0o600)
    with pytest.raises(DataKeyError, match="does not match"):
        SqliteStore(db, key_file=other)
    with pytest.raises(DataKeyError, match="does not match"):
        open_store(f"sqlite://{db}", key=os.urandom(32))
    key.rename(tmp_path / "moved.key")
    with pytest.raises(DataKeyError, match="not found"):
        SqliteStore(db)
    assert not key.exists()  # a missing key is never silently replaced by a new one
    (tmp_path / "moved.key").rename(key)
    key.chmod(0o644)
    with pytest.raises(DataKeyError, match="chmod 600"):
        SqliteStore(db)
    assert file_digest(db) == before
    key.chmod(0o600)
    with SqliteStore(db) as store:
        assert store.gallery_stats("staff").templates == 3


def test_operator_supplied_key(tmp_path: Path) -> None:
    kek = os.urandom(32)
    db = tmp_path / "fl.db"
    with open_store(f"sqlite://{db}", key=kek) as store:
        enroll(store, unit_vectors(2, 0))
    assert not db.with_name("fl.db.key").exists()
    with open_store(f"sqlite://{db}", key=kek) as store:
        assert store.search("staff", unit_vectors(2, 0)[1], k=1)[0][0].external_ref == "s1"


# -- encryption at rest and erasure ----------------------------------------------------------
def raw_rows(db: Path, subject_id: int) -> tuple[bytes, bytes]:
    """The stored template ciphertext and wrapped data key of a subject (read behind the store's back)."""
    con = sqlite3.connect(db)
    try:
        (blob,) = con.execute("SELECT vector FROM templates WHERE subject_id = ?", (subject_id,)).fetchone()
        (wrapped,) = con.execute("SELECT wrapped FROM subject_keys WHERE subject_id = ?", (subject_id,)).fetchone()
    finally:
        con.close()
    return blob, wrapped


def readable(blob: bytes, *paths: Path) -> list[str]:
    return [p.name for p in paths if p.exists() and blob in p.read_bytes()]


def test_templates_are_encrypted_and_erasure_leaves_no_readable_copy(tmp_path: Path, faces) -> None:
    db, backup = tmp_path / "fl.db", tmp_path / "backup.db"
    wal = db.with_name("fl.db-wal")
    store = SqliteStore(db)
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        ids = {}
        for p in PEOPLE[:3]:
            s = tx.add_subject("staff", p)
            tx.add_template(s.id, faces[p][0].new())
            ids[p] = s.id
    gone, kept = PEOPLE[0], PEOPLE[1]
    plain = {p: faces[p][0].vector.astype("<f4").tobytes() for p in PEOPLE[:3]}
    blob, wrapped = raw_rows(db, ids[gone])
    kept_blob, _ = raw_rows(db, ids[kept])
    # encrypted at rest: no plaintext vector anywhere, while the ciphertext is there
    assert readable(plain[gone], db, wal) == [] and readable(plain[gone][:64], db, wal) == []
    assert readable(blob, db, wal) != []
    assert store.search("staff", faces[gone][1].vector, k=1)[0][0].external_ref == gone
    with store.transaction() as tx:
        tx.remove_subject(ids[gone])
    store.backup(backup)
    for secret in (plain[gone], plain[gone][:64], blob, blob[12:60], wrapped):
        assert readable(secret, db, wal, backup) == []
    assert readable(kept_blob, db, backup) == ["fl.db", "backup.db"]  # positive control: kept data is found
    assert store.last_checkpoint is not None and store.last_checkpoint[0] == 0
    assert wal.stat().st_size == 0
    with open_store(f"sqlite://{backup}", key_file=db.with_name("fl.db.key")) as restored:
        names = [c.external_ref for c in restored.search("staff", faces[gone][0].vector, k=3)[0]]
    assert gone not in names and kept in names
    store.close()


def test_a_dropped_gallery_and_a_closed_store_overwrite_the_index_arrays(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fl.db")
    v = unit_vectors(40, 9)
    for name in ("staff", "visitors"):
        with store.transaction() as tx:
            tx.create_gallery(name, settings())
            for i in range(20):
                tx.add_template(tx.add_subject(name, f"{name}-{i}").id, new_template(v[i], f"p{i}"))
        store.search(name, v[0], k=1)  # loaded
    staff, visitors = (store.index(name) for name in ("staff", "visitors"))
    held = [a for a in (staff._codes, staff._codes2, staff._vecs) if a is not None]
    assert all(a.any() for a in held)
    with store.transaction() as tx:
        tx.delete_gallery("staff", cascade=True)
    assert len(staff) == 0 and not any(a.any() for a in held)  # zeroed, not just let go
    assert len(visitors) == 20
    held = [a for a in (visitors._codes, visitors._codes2, visitors._vecs) if a is not None]
    store.close()
    assert len(visitors) == 0 and not any(a.any() for a in held)


def test_a_ciphertext_moved_to_another_subject_does_not_decrypt(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    with SqliteStore(db) as store:
        a, b = enroll(store, unit_vectors(2, 0))
    con = sqlite3.connect(db)
    blob_a, _ = raw_rows(db, a)
    con.execute("UPDATE templates SET vector = ? WHERE subject_id = ?", (blob_a, b))
    con.commit()
    con.close()
    with SqliteStore(db) as store, pytest.raises(DataKeyError):
        store.search("staff", unit_vectors(1, 3)[0], k=1)


# -- corruption and migrations --------------------------------------------------------------
def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    db.write_bytes(os.urandom(8192))
    before = file_digest(db)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(f"sqlite://{db}")
    assert file_digest(db) == before and not db.with_name("fl.db.key").exists()


def test_corrupted_pages_give_a_store_error(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    with SqliteStore(db) as store:
        enroll(store, unit_vectors(200, 0))
    data = bytearray(db.read_bytes())
    page = 4096
    for p in range(1, len(data) // page):
        data[p * page + 8: p * page + 400] = os.urandom(392)  # every page after the header page
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        store = SqliteStore(db)
        store.search("staff", unit_vectors(1, 0)[0], k=1)


def test_migrations_are_recorded_and_newer_schemas_refused(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    SqliteStore(db).close()
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT version FROM schema_migrations")] == [1, 2]
    con.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', '2099-01-01T00:00:00.000000Z')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(db)


def test_pragmas(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "fl.db") as store:
        db = store._db
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


# -- in-memory index kept in step -------------------------------------------------------------
def test_index_follows_changes_made_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    v = unit_vectors(20, 0)
    a, b = SqliteStore(db), SqliteStore(db)  # two connections: as two processes would be
    ids = enroll(a, v[:10])
    assert a.search("staff", v[3], k=1)[0][0].subject_id == ids[3]
    new = enroll(b, v[10:], prefix="b")
    with b.transaction() as tx:
        tx.remove_subject(ids[3])
    assert a.search("staff", v[15], k=1)[0][0].subject_id == new[5]
    assert ids[3] not in {c.subject_id for c in a.search("staff", v[3], k=19)[0]}
    assert len(a.index("staff")) == 19
    with a.transaction() as tx:  # a's own change on top of b's: applied after a re-sync
        tx.remove_subject(new[0])
    assert a.index("staff").template_ids == b.index("staff").template_ids
    assert len(a.index("staff")) == 18
    a.close()
    b.close()


def test_ann_index_stays_consistent_with_the_rows(tmp_path: Path) -> None:
    v = unit_vectors(400, 1)
    ann = AnnOptions(mode="on", background=False, m=8, ef_construction=64, ef_search=64)
    with SqliteStore(tmp_path / "fl.db", ann=ann) as store:
        ids = enroll(store, v[:300])
        index = store.index("staff")
        assert index.ann_ready
        more = enroll(store, v[300:], prefix="m")
        with store.transaction() as tx:
            for sid in ids[:100]:
                tx.remove_subject(sid)
        approx = store.search("staff", v, k=5)
        exact = store.search("staff", v, k=5, exact=True)
        live = set(ids[100:]) | set(more)
        for got in approx:
            assert {c.subject_id for c in got} <= live
        assert sum(g[0].subject_id == r[0].subject_id for g, r in zip(approx, exact, strict=True)) >= 390
        assert [c[0].subject_id for c in approx[300:]] == more
        assert len(index._ann) == len(index) == 300


def test_key_rotation_rewraps_every_data_key(tmp_path: Path) -> None:
    db, backup = tmp_path / "fl.db", tmp_path / "before.db"
    key = db.with_name("fl.db.key")
    v = unit_vectors(5, 4)
    with SqliteStore(db) as store:
        enroll(store, v)
        store.backup(backup)
        old = key.read_text()
        store.rotate_key()
        assert key.read_text() != old and stat.S_IMODE(key.stat().st_mode) == 0o600
        assert store.search("staff", v[2], k=1)[0][0].external_ref == "s2"
        enroll(store, unit_vectors(1, 8), prefix="after")
    with SqliteStore(db) as store:  # reopened with the new key file
        assert store.gallery_stats("staff").templates == 6
    with pytest.raises(DataKeyError):  # a copy made before the rotation needs the old key
        SqliteStore(backup, key_file=key)


def test_an_interrupted_rotation_is_completed_on_open(tmp_path: Path) -> None:
    db = tmp_path / "fl.db"
    key = db.with_name("fl.db.key")
    with SqliteStore(db) as store:
        enroll(store, unit_vectors(3, 4))
        old = key.read_text()
        store.rotate_key()
        new = key.read_text()
    # as if the process died after COMMIT and before replacing the key file
    key.with_name("fl.db.key.new").write_text(new)
    key.with_name("fl.db.key.new").chmod(0o600)
    key.write_text(old)
    with SqliteStore(db) as store:
        assert store.search("staff", unit_vectors(3, 4)[1], k=1)[0][0].external_ref == "s1"
    assert key.read_text() == new and not key.with_name("fl.db.key.new").exists()


def test_search_inside_a_transaction_never_caches_uncommitted_templates(tmp_path: Path) -> None:
    v = unit_vectors(4, 6)
    with SqliteStore(tmp_path / "fl.db") as store:
        enroll(store, v[:2])
        enroll(store, v[2:3], gallery="other")
        with pytest.raises(RuntimeError), store.transaction() as tx:
            s = tx.add_subject("staff", "ghost")
            tx.add_template(s.id, new_template(v[3], "ghost"))
            with pytest.raises(StoreError, match="uncommitted"):
                store.search("staff", v[3], k=1)
            assert store.search("other", v[2], k=1)[0][0].external_ref == "s0"  # untouched: fine
            raise RuntimeError("roll back")
        assert "ghost" not in [c.external_ref for c in store.search("staff", v[3], k=5)[0]]
        assert len(store.index("staff")) == 2


def test_hnsw_is_built_in_the_background_from_the_threshold(tmp_path: Path) -> None:
    v = unit_vectors(300, 9)
    ann = AnnOptions(mode="auto", min_templates=250, background=True, m=8, ef_construction=64, ef_search=100)
    with SqliteStore(tmp_path / "fl.db", ann=ann) as store:
        enroll(store, v[:200])
        assert store.search("staff", v[5], k=1)[0][0].external_ref == "s5"
        assert not store.index("staff").wait_for_ann(timeout=10)  # below the threshold: exact only
        enroll(store, v[200:], prefix="b")
        index = store.index("staff")
        assert index.wait_for_ann(timeout=60) and len(index.ann) == 300
        assert [c[0].external_ref for c in store.search("staff", v[[3, 250]], k=1)] == ["s3", "b50"]


def test_a_version_1_database_gains_crops_and_evidence(tmp_path: Path) -> None:
    from faceledger.store.sqlite_schema import INITIAL

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    for statement in INITIAL.split(";\n"):
        if statement.strip():
            con.execute(statement)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TEXT NOT NULL)")
    con.execute("INSERT INTO schema_migrations VALUES (1, 'initial', '2026-01-01T00:00:00.000000Z')")
    con.commit()
    con.close()
    with SqliteStore(db) as store:
        with store.transaction() as tx:
            tx.put_evidence("lead-1", b"crop")
        assert store.get_evidence("lead-1") == b"crop"
    cols = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(templates)")]
    assert "crop" in cols
