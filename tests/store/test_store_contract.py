"""The storage contract, run over every backend (SQLite and PostgreSQL + pgvector).

Search tests use real SFace templates of LFW photos (see ``faces`` in conftest).
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from storehelp import DIM, MODEL, PEOPLE, new_template, settings, sha, unit_vectors

from faceledger.core.chain import GENESIS, canonical_json, entry_hash
from faceledger.errors import ConflictError, InputError, ModelMismatchError, NotFoundError, StoreError
from faceledger.store import BulkSubject, NewTemplate, Store


def enroll_people(store: Store, faces, gallery: str = "staff") -> dict[str, int]:
    """One subject per person, enrolled with the person's first photo; returns ids by person."""
    ids = {}
    with store.transaction() as tx:
        tx.create_gallery(gallery, settings())
        for person in PEOPLE:
            s = tx.add_subject(gallery, person, person.replace("_", " "))
            tx.add_template(s.id, faces[person][0].new())
            ids[person] = s.id
        tx.append_ledger({"op": "enroll", "count": len(PEOPLE)})
    return ids


# -- galleries -------------------------------------------------------------------------
def test_gallery_lifecycle(store: Store) -> None:
    with store.transaction() as tx:
        g = tx.create_gallery("staff", settings(retention_days=30, quality_gate={"min_size": 80}))
    assert (g.name, g.model_id, g.dimension, g.retention_days) == ("staff", MODEL, DIM, 30)
    assert g.thresholds == {"fmr1e-3": 0.36} and g.operating_point == "fmr1e-3"
    assert g.quality_gate == {"min_size": 80} and g.keep_photos is False
    assert store.get_gallery("staff") == g
    assert [x.name for x in store.list_galleries()] == ["staff"]
    with store.transaction() as tx:
        g2 = tx.update_gallery("staff", retention_days=90, thresholds={"fmr1e-3": 0.4, "fmr1e-4": 0.5})
    assert g2.retention_days == 90 and g2.thresholds["fmr1e-4"] == 0.5 and g2.created_at == g.created_at
    with pytest.raises(ConflictError), store.transaction() as tx:
        tx.create_gallery("staff", settings())
    with pytest.raises(InputError), store.transaction() as tx:
        tx.update_gallery("staff", model_id="other")  # the model changes only through set_gallery_model
    with pytest.raises(InputError), store.transaction() as tx:
        tx.create_gallery("no spaces/slashes", settings())
    with pytest.raises(NotFoundError):
        store.get_gallery("visitors")
    with store.transaction() as tx:
        tx.delete_gallery("staff")
    assert store.list_galleries() == []


def test_delete_gallery_with_subjects_needs_cascade(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        s = tx.add_subject("staff", "e1")
        tx.add_template(s.id, new_template(unit_vectors(1, 0)[0], "p1"))
    with pytest.raises(ConflictError), store.transaction() as tx:
        tx.delete_gallery("staff")
    with store.transaction() as tx:
        tx.delete_gallery("staff", cascade=True)
    with pytest.raises(NotFoundError):
        store.get_subject(s.id)


# -- subjects and templates --------------------------------------------------------------
def test_subjects(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        tx.create_gallery("visitors", settings())
        a = tx.add_subject("staff", "emp-1", "Alice")
        tx.add_subject("visitors", "emp-1")  # the same reference in another gallery is another person
    assert store.find_subject("staff", "emp-1") == a
    assert (a.gallery, a.external_ref, a.display_name, a.template_count) == ("staff", "emp-1", "Alice", 0)
    with pytest.raises(ConflictError), store.transaction() as tx:
        tx.add_subject("staff", "emp-1")
    with pytest.raises(NotFoundError):
        store.find_subject("staff", "emp-2")
    with pytest.raises(NotFoundError):
        store.get_subject(10_000)
    with pytest.raises(NotFoundError), store.transaction() as tx:
        tx.add_subject("nobody", "x")
    assert [s.external_ref for s in store.list_subjects("staff")] == ["emp-1"]
    later = a.created_at + timedelta(seconds=1)
    assert len(store.list_subjects("staff", created_before=later)) == 1
    assert store.list_subjects("staff", created_before=a.created_at) == []


def test_add_template_checks_and_idempotence(store: Store, faces) -> None:
    face = faces[PEOPLE[0]][0]
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        s = tx.add_subject("staff", "emp-1")
        t1 = tx.add_template(s.id, face.new())
        t2 = tx.add_template(s.id, face.new())  # the same photo again: the stored template
    assert t1 == t2 and store.get_subject(s.id).template_count == 1
    assert t1.source_sha256 == face.sha256 and t1.quality == {"size": 110.0, "sharpness": None}
    assert store.list_templates(s.id) == [t1]
    bad = [
        (ModelMismatchError, NewTemplate(face.vector, "dlib-resnet", sha("x"))),
        (InputError, NewTemplate(face.vector[:64].copy(), MODEL, sha("x"))),
        (InputError, NewTemplate(face.vector * 2, MODEL, sha("x"))),
        (InputError, NewTemplate(face.vector.astype(np.float64), MODEL, sha("x"))),
        (InputError, NewTemplate(face.vector, MODEL, "not-a-digest")),
    ]
    for error, template in bad:
        with pytest.raises(error), store.transaction() as tx:
            tx.add_subject("staff", "emp-2")
            tx.add_template(s.id, template)
        with pytest.raises(NotFoundError):  # nothing of that transaction was written
            store.find_subject("staff", "emp-2")
    assert store.gallery_stats("staff").templates == 1


def test_photos_are_kept_only_when_the_gallery_keeps_them(store: Store) -> None:
    v = unit_vectors(2, 1)
    with store.transaction() as tx:
        tx.create_gallery("keep", settings(keep_photos=True))
        tx.create_gallery("drop", settings())
        a, b = tx.add_subject("keep", "a"), tx.add_subject("drop", "b")
        ta = tx.add_template(a.id, NewTemplate(v[0], MODEL, sha("pa"), photo=b"\xff\xd8 photo a"))
        tb = tx.add_template(b.id, NewTemplate(v[1], MODEL, sha("pb"), photo=b"\xff\xd8 photo b"))
    assert ta.has_photo and not tb.has_photo
    assert store.get_photo(ta.id) == b"\xff\xd8 photo a" and store.get_photo(tb.id) is None


# -- search ------------------------------------------------------------------------------
def test_search_finds_the_mate_first(store: Store, faces) -> None:
    ids = enroll_people(store, faces)
    probes = np.stack([faces[p][1].vector for p in PEOPLE])
    results = store.search("staff", probes, k=3, model_id=MODEL)
    for person, cands in zip(PEOPLE, results, strict=True):
        assert [c.rank for c in cands] == [1, 2, 3]
        top = cands[0]
        assert (top.subject_id, top.external_ref) == (ids[person], person)
        assert top.score >= 0.36 > cands[1].score  # the mate passes the threshold, strangers do not
        assert all(a.score >= b.score for a, b in zip(cands, cands[1:], strict=False))
    exact = np.stack([faces[p][0].vector for p in PEOPLE]) @ probes[0]
    assert results[0][0].score == pytest.approx(float(exact.max()), abs=1e-5)


def test_search_errors_and_small_galleries(store: Store, faces) -> None:
    enroll_people(store, faces)
    probe = faces[PEOPLE[0]][1].vector
    assert len(store.search("staff", probe, k=50)[0]) == len(PEOPLE)  # k larger than the gallery
    with pytest.raises(ModelMismatchError):
        store.search("staff", probe, k=1, model_id="dlib-resnet")
    with pytest.raises(InputError):
        store.search("staff", probe[:64], k=1)
    with pytest.raises(InputError):
        store.search("staff", probe, k=0)
    with pytest.raises(NotFoundError):
        store.search("visitors", probe, k=1)
    with store.transaction() as tx:
        tx.create_gallery("empty", settings())
    assert store.search("empty", probe, k=5) == [[]]


def test_subjects_are_ranked_by_their_best_template(store: Store, faces) -> None:
    """A subject with many near-identical templates occupies one rank, scored by its best template."""
    a, b = faces[PEOPLE[0]], faces[PEOPLE[1]]
    rng = np.random.default_rng(3)
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        crowd = tx.add_subject("staff", "crowd")
        for i in range(40):  # 40 jittered copies of A's first photo
            v = a[0].vector + rng.normal(0, 0.01, DIM).astype(np.float32)
            tx.add_template(crowd.id, new_template((v / np.linalg.norm(v)).astype(np.float32), f"c{i}"))
        best = tx.add_template(crowd.id, a[0].new())
        others = [tx.add_subject("staff", f"other{i}") for i in range(3)]
        tx.add_template(others[0].id, b[0].new())
        for i, s in enumerate(others[1:]):
            tx.add_template(s.id, new_template(unit_vectors(1, 10 + i)[0], f"o{i}"))
    cands = store.search("staff", a[0].vector, k=4)[0]
    assert [c.external_ref for c in cands[:1]] == ["crowd"] and len({c.subject_id for c in cands}) == 4
    assert cands[0].template_id == best.id and cands[0].score == pytest.approx(1.0, abs=1e-5)


def test_remove_subject(store: Store, faces) -> None:
    ids = enroll_people(store, faces)
    gone = PEOPLE[0]
    with store.transaction() as tx:
        removed = tx.remove_subject(ids[gone])
        tx.append_ledger({"op": "erase", "subject_id": ids[gone]})
    assert removed.external_ref == gone and removed.template_count == 1
    with pytest.raises(NotFoundError):
        store.get_subject(ids[gone])
    cands = store.search("staff", faces[gone][0].vector, k=len(PEOPLE))[0]
    assert ids[gone] not in {c.subject_id for c in cands} and len(cands) == len(PEOPLE) - 1
    assert store.gallery_stats("staff").templates == len(PEOPLE) - 1
    assert store.ledger_head().seq == 2  # the ledger survives erasure
    with pytest.raises(NotFoundError), store.transaction() as tx:
        tx.remove_subject(ids[gone])


def test_set_gallery_model_drops_templates(store: Store, faces) -> None:
    enroll_people(store, faces)
    with store.transaction() as tx:
        n = tx.set_gallery_model("staff", "other-model", 64)
    assert n == len(PEOPLE)
    g = store.get_gallery("staff")
    assert (g.model_id, g.dimension, g.thresholds) == ("other-model", 64, {})
    v = unit_vectors(1, 5, dim=64)[0]
    subject = store.find_subject("staff", PEOPLE[0])
    with store.transaction() as tx:
        tx.add_template(subject.id, new_template(v, "new", model="other-model"))
    assert store.search("staff", v, k=1)[0][0].subject_id == subject.id


def test_bulk_enroll(store: Store) -> None:
    v = unit_vectors(30, 7)
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        ids = tx.bulk_enroll("staff", [BulkSubject(f"s{i}", [new_template(v[i], f"p{i}")], f"S {i}")
                                       for i in range(30)])
    assert len(set(ids)) == 30
    top = store.search("staff", v[[3, 17]], k=1)
    assert [c[0].subject_id for c in top] == [ids[3], ids[17]]
    assert store.get_subject(ids[3]).display_name == "S 3"
    with pytest.raises(ConflictError), store.transaction() as tx:
        tx.bulk_enroll("staff", [BulkSubject("new", [new_template(v[0], "q")]), BulkSubject("s1", [])])
    with pytest.raises(NotFoundError):
        store.find_subject("staff", "new")


def test_warm_loads_a_gallery_before_its_first_search(store_url: str, faces) -> None:
    from faceledger.engine import Engine
    from faceledger.store import open_store

    with open_store(store_url) as writer:
        ids = enroll_people(writer, faces)
        with writer.transaction() as tx:
            tx.create_gallery("empty", settings())
    with open_store(store_url) as store:  # another process's view: nothing held yet
        held = _held(store)
        assert held == set()
        assert store.warm("staff") == len(PEOPLE) and store.warm("empty") == 0
        assert len(_held(store)) == len(PEOPLE)
        with pytest.raises(NotFoundError):
            store.warm("visitors")
        with pytest.raises(InputError):
            store.warm("no spaces/slashes")
        probe = faces[PEOPLE[2]][1].vector
        assert store.search("staff", probe, k=1)[0][0].subject_id == ids[PEOPLE[2]]
        engine = Engine(store, recognizer="yunet-sface")
        seen: list[tuple[str, int, int]] = []
        assert engine.warm_galleries(lambda *step: seen.append(step)) == {"empty": 0, "staff": len(PEOPLE)}
        assert [step[1:] for step in seen] == [(1, 2), (2, 2)] and {step[0] for step in seen} == {"empty", "staff"}


def _held(store: Store) -> set[int]:
    """The template ids a store holds in memory for search (a look inside, for tests)."""
    indexes = store._indexes if store.backend == "sqlite" else store._memory._indexes  # type: ignore[attr-defined]
    return {t for index in indexes.values() for t in index.template_ids}


# -- transactions ------------------------------------------------------------------------
def test_rollback_leaves_nothing(store: Store, faces) -> None:
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
    head = store.ledger_head()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        s = tx.add_subject("staff", "emp-1")
        tx.add_template(s.id, faces[PEOPLE[0]][0].new())
        tx.put_record("consent", "c-1", {"purpose": "access"}, subject_id=s.id)
        tx.append_ledger({"op": "enroll"})
        raise RuntimeError("crash before commit")
    assert store.ledger_head() == head
    assert store.gallery_stats("staff").subjects == 0 and store.gallery_stats("staff").templates == 0
    assert store.search("staff", faces[PEOPLE[0]][0].vector, k=1) == [[]]
    with pytest.raises(NotFoundError):
        store.get_record("consent", "c-1")
    with pytest.raises(StoreError):
        tx.append_ledger({"op": "late"})  # a finished transaction cannot be used


def test_a_failed_statement_does_not_spoil_the_transaction(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        tx.add_subject("staff", "emp-1")
        with pytest.raises(ConflictError):
            tx.add_subject("staff", "emp-1")
        tx.add_subject("staff", "emp-2")
    assert store.gallery_stats("staff").subjects == 2


def test_transactions_do_not_nest(store: Store) -> None:
    with store.transaction(), pytest.raises(StoreError), store.transaction():
        pass


# -- governance records ------------------------------------------------------------------------
def test_records(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_gallery("staff", settings())
        s = tx.add_subject("staff", "emp-1")
        r1 = tx.put_record("consent", "c-1", {"purpose": "access", "scores": [0.5]}, gallery="staff", subject_id=s.id)
        tx.put_record("consent", "c-2", {"purpose": "other"}, gallery="staff")
        tx.put_record("authorization", "a-1", {"kind": "warrant"})
    assert store.get_record("consent", "c-1") == r1 and r1.data == {"purpose": "access", "scores": [0.5]}
    assert [r.record_id for r in store.list_records("consent", gallery="staff")] == ["c-1", "c-2"]
    assert [r.record_id for r in store.list_records("consent", subject_id=s.id)] == ["c-1"]
    with store.transaction() as tx:
        r1b = tx.put_record("consent", "c-1", {"purpose": "access", "withdrawn": True}, subject_id=s.id)
    assert r1b.created_at == r1.created_at and r1b.updated_at >= r1.updated_at and r1b.data["withdrawn"]
    with pytest.raises(InputError), store.transaction() as tx:
        tx.put_record("consent", "c-3", {"x": float("nan")})
    with pytest.raises(InputError), store.transaction() as tx:
        tx.delete_records()
    with store.transaction() as tx:
        assert tx.delete_records(subject_id=s.id) == 1
    with pytest.raises(NotFoundError):
        store.get_record("consent", "c-1")
    assert [r.kind for r in store.list_records("authorization")] == ["authorization"]


def test_subject_export_has_metadata_and_no_vectors(store: Store, faces) -> None:
    ids = enroll_people(store, faces)
    sid = ids[PEOPLE[1]]
    with store.transaction() as tx:
        tx.put_record("consent", "c-9", {"notice": "v2"}, gallery="staff", subject_id=sid)
    export = store.subject_export(sid)
    text = json.dumps(export)
    assert export["subject"]["external_ref"] == PEOPLE[1]
    assert [t["source_sha256"] for t in export["templates"]] == [faces[PEOPLE[1]][0].sha256]
    assert export["records"][0]["data"] == {"notice": "v2"}
    assert "vector" not in text and "embedding" not in text
    assert f"{float(faces[PEOPLE[1]][0].vector[0]):.6f}"[:8] not in text


# -- ledger --------------------------------------------------------------------------------------
def test_ledger_chain(store: Store) -> None:
    assert store.ledger_head().seq == 0 and store.ledger_head().hash == GENESIS
    fields = [{"op": "enroll", "actor": "ana", "i": i, "score": 0.5 + i / 10, "who": "Zoë"} for i in range(5)]
    rows = []
    with store.transaction() as tx:
        rows.append(tx.append_ledger(fields[0]))
        rows.append(tx.append_ledger(fields[1]))
    for f in fields[2:]:
        with store.transaction() as tx:
            rows.append(tx.append_ledger(f))
    prev = GENESIS
    for seq, (row, f) in enumerate(zip(rows, fields, strict=True), start=1):
        assert (row.seq, row.prev_hash, row.fields) == (seq, prev, f)
        assert row.hash == entry_hash(prev, {**f, "seq": seq})
        prev = row.hash
    assert list(store.iter_ledger()) == rows and list(store.iter_ledger(4)) == rows[3:]
    assert list(store.iter_ledger(2, 3)) == rows[1:3]
    raw = list(store.ledger_rows(5))
    assert raw == [(5, rows[4].prev_hash, rows[4].hash, canonical_json(fields[4]).decode())]
    from faceledger.governance.verify import verify_chain  # the auditors' verifier reads the raw rows

    assert verify_chain(store.ledger_rows()).ok
    assert store.ledger_head().hash == rows[-1].hash
    for bad in ({"seq": 3}, {"hash": "x"}, {"x": float("nan")}, {}, {"x": object()}):
        with pytest.raises(InputError), store.transaction() as tx:
            tx.append_ledger(bad)
    assert store.ledger_head().seq == 5
