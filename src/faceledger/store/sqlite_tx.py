"""Reads and writes of the SQLite store, on one connection (used inside and outside transactions).

:class:`SqliteReads` holds the queries both the store and a transaction need;
:class:`SqliteTransaction` adds the writes. Changes to the in-memory search
indexes are *collected* here and applied by the store only after ``COMMIT``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from faceledger.errors import ConflictError, InputError, NotFoundError, StorageFullError, StoreError

from ._common import (
    bulk_rows,
    check_model,
    check_name,
    check_record_key,
    check_settings,
    check_sha256,
    check_text,
    check_vector,
    dump_json,
    from_iso,
    new_ledger_row,
    quality_json,
    to_iso,
    updated_settings,
    utc_now,
)
from .base import (
    BulkSubject,
    Gallery,
    GallerySettings,
    LedgerRow,
    NewTemplate,
    Record,
    StoredTemplate,
    Subject,
)
from .crypto import DataKey, Kek
from .reads import TEMPLATE_COLS, SqlReads

GALLERY_COLS = ("id, name, model_id, dimension, retention_days, thresholds, operating_point, keep_photos, "
                "quality_gate, created_at, version")


#: SQLite's primary result code for "database or disk is full".
SQLITE_FULL = 13


@contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Turn ``sqlite3`` errors into :class:`StoreError` (unique violations into :class:`ConflictError`)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise ConflictError(f"{what}: {exc}") from None
    except sqlite3.Error as exc:
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_FULL:
            raise StorageFullError(f"{what}: the disk holding the store is full (or the database reached "
                                   "its size limit); nothing of this operation was written: free space and retry"
                                   ) from None
        raise StoreError(f"{what}: SQLite error: {exc}") from None


def gallery_of(row: tuple) -> Gallery:
    return Gallery(name=row[1], model_id=row[2], dimension=row[3], retention_days=row[4],
                   thresholds=json.loads(row[5]), operating_point=row[6], keep_photos=bool(row[7]),
                   quality_gate=json.loads(row[8]), created_at=from_iso(row[9]))


def subject_of(row: tuple) -> Subject:
    return Subject(id=row[0], gallery=row[1], external_ref=row[2], display_name=row[3],
                   created_at=from_iso(row[4]), template_count=row[5])


def template_of(row: tuple) -> StoredTemplate:
    return StoredTemplate(id=row[0], subject_id=row[1], quality=json.loads(row[2]), source_sha256=row[3],
                          created_at=from_iso(row[4]), has_photo=bool(row[5]))


def record_of(row: tuple) -> Record:
    return Record(kind=row[0], record_id=row[1], data=json.loads(row[2]), gallery=row[3], subject_id=row[4],
                  created_at=from_iso(row[5]), updated_at=from_iso(row[6]))


def template_aad(subject_id: int, sha: str) -> bytes:
    return b"tpl:%d:%s" % (subject_id, sha.encode())


def photo_aad(subject_id: int, sha: str) -> bytes:
    return b"photo:%d:%s" % (subject_id, sha.encode())


def crop_aad(subject_id: int, sha: str) -> bytes:
    return b"crop:%d:%s" % (subject_id, sha.encode())


def evidence_aad(evidence_id: str) -> bytes:
    return b"evidence:" + evidence_id.encode()


class SqliteReads(SqlReads):
    """Queries over one connection; callers hold the store's lock."""

    MARK = "?"
    GALLERY_COLS = GALLERY_COLS
    _gallery_of = staticmethod(gallery_of)
    _subject_of = staticmethod(subject_of)
    _record_of = staticmethod(record_of)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def _one(self, sql: str, params: tuple = ()) -> tuple | None:
        with db_errors("read"):
            return self._db.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple = ()) -> list[tuple]:
        with db_errors("read"):
            return self._db.execute(sql, params).fetchall()


@dataclass
class IndexDelta:
    """Changes of one gallery's templates in a transaction, applied to its index after commit."""

    before: int  # the gallery's change counter when the transaction first touched it
    adds: list[tuple[int, int, np.ndarray]] = field(default_factory=list)
    removes: list[int] = field(default_factory=list)
    dropped: bool = False  # the gallery was deleted or its model changed


class SqliteTransaction(SqliteReads):
    """One ``BEGIN IMMEDIATE`` transaction of a :class:`~faceledger.store.sqlite.SqliteStore`."""

    def __init__(self, db: sqlite3.Connection, kek: Kek) -> None:
        super().__init__(db)
        self._kek = kek
        self._keys: dict[int, DataKey] = {}
        self.deltas: dict[int, IndexDelta] = {}
        self.erased = False  # something biometric was deleted: checkpoint the WAL after commit
        self.closed = False

    def _exec(self, sql: str, params: tuple = (), what: str = "write") -> sqlite3.Cursor:
        if self.closed:
            raise StoreError("this transaction is finished: open a new one with store.transaction()")
        with db_errors(what):
            return self._db.execute(sql, params)

    def _touch(self, gallery_id: int) -> IndexDelta:
        if gallery_id not in self.deltas:
            after = self._exec("UPDATE galleries SET version = version + 1 WHERE id = ? RETURNING version",
                               (gallery_id,)).fetchone()[0]
            self.deltas[gallery_id] = IndexDelta(before=after - 1)
        return self.deltas[gallery_id]

    # -- galleries ---------------------------------------------------------------
    def create_gallery(self, name: str, settings: GallerySettings) -> Gallery:
        s = check_settings(settings)
        try:
            self._exec("INSERT INTO galleries (name, model_id, dimension, retention_days, thresholds, "
                       "operating_point, keep_photos, quality_gate, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                       (check_name(name), s.model_id, s.dimension, s.retention_days, dump_json(s.thresholds, "x"),
                        s.operating_point, int(s.keep_photos), dump_json(s.quality_gate, "quality gate"),
                        to_iso(utc_now())), what=f"create gallery '{name}'")
        except ConflictError:
            raise ConflictError(f"a gallery named '{name}' already exists", gallery=name) from None
        return self.get_gallery(name)

    def update_gallery(self, name: str, **changes: Any) -> Gallery:
        s = updated_settings(self.get_gallery(name), changes)
        self._exec("UPDATE galleries SET retention_days=?, thresholds=?, operating_point=?, keep_photos=?, "
                   "quality_gate=? WHERE name=?", (s.retention_days, dump_json(s.thresholds, "x"),
                                                   s.operating_point, int(s.keep_photos),
                                                   dump_json(s.quality_gate, "quality gate"), name))
        return self.get_gallery(name)

    def set_gallery_model(self, name: str, model_id: str, dimension: int) -> int:
        """Pin another model: deletes every template of the gallery (re-enroll afterwards); returns how many."""
        row = self._gallery_row(name)
        check_settings(GallerySettings(model_id, dimension))
        delta = self._touch(row[0])
        n = self._exec("DELETE FROM templates WHERE gallery_id = ?", (row[0],)).rowcount
        self._exec("UPDATE galleries SET model_id = ?, dimension = ?, thresholds = '{}', operating_point = NULL "
                   "WHERE id = ?", (model_id, dimension, row[0]))
        delta.dropped, self.erased = True, self.erased or n > 0
        return n

    def delete_gallery(self, name: str, *, cascade: bool = False) -> None:
        """Delete a gallery; with subjects in it only if ``cascade`` (their templates and keys go too)."""
        row = self._gallery_row(name)
        (count,) = self._one("SELECT count(*) FROM subjects WHERE gallery_id = ?", (row[0],)) or (0,)
        if count and not cascade:
            raise ConflictError(f"gallery '{name}' still has {count} subject(s): remove them or pass cascade",
                                gallery=name, subjects=count)
        self._exec("DELETE FROM galleries WHERE id = ?", (row[0],))
        self.deltas.setdefault(row[0], IndexDelta(before=row[10])).dropped = True
        self.erased = self.erased or count > 0

    # -- subjects ------------------------------------------------------------------
    def add_subject(self, gallery: str, external_ref: str, display_name: str | None = None) -> Subject:
        gid = self._gallery_row(gallery)[0]
        check_text(external_ref, "external reference")
        if display_name is not None:
            check_text(display_name, "display name")
        try:
            sid = self._exec("INSERT INTO subjects (gallery_id, external_ref, display_name, created_at) "
                             "VALUES (?,?,?,?) RETURNING id", (gid, external_ref, display_name,
                                                               to_iso(utc_now()))).fetchone()[0]
        except ConflictError:
            raise ConflictError(f"subject '{external_ref}' already exists in gallery '{gallery}'",
                                gallery=gallery, external_ref=external_ref) from None
        key, wrapped = self._kek.new_data_key(sid)
        self._exec("INSERT INTO subject_keys (subject_id, wrapped) VALUES (?, ?)", (sid, wrapped))
        self._keys[sid] = key
        return self.get_subject(sid)

    def remove_subject(self, subject_id: int) -> Subject:
        """Delete a subject, its data key and templates (and photos); returns what was removed."""
        subject = self.get_subject(subject_id)
        gid = self._one("SELECT gallery_id FROM subjects WHERE id = ?", (subject.id,))[0]  # type: ignore[index]
        tids = [r[0] for r in self._all("SELECT id FROM templates WHERE subject_id = ?", (subject.id,))]
        self._exec("DELETE FROM subjects WHERE id = ?", (subject.id,))  # cascades to key and templates
        if tids:
            self._touch(gid).removes.extend(tids)
        self._keys.pop(subject.id, None)
        self.erased = True
        return subject

    def _data_key(self, subject_id: int) -> DataKey:
        if subject_id not in self._keys:
            row = self._one("SELECT wrapped FROM subject_keys WHERE subject_id = ?", (subject_id,))
            if row is None:
                raise StoreError(f"subject {subject_id} has no data key")
            self._keys[subject_id] = self._kek.unwrap(subject_id, row[0])
        return self._keys[subject_id]

    def add_template(self, subject_id: int, template: NewTemplate) -> StoredTemplate:
        """Add an encrypted template; the same ``source_sha256`` twice returns the stored one."""
        row = self._one("SELECT s.gallery_id, g.name FROM subjects s JOIN galleries g ON g.id = s.gallery_id "
                        "WHERE s.id = ?", (int(subject_id),))
        if row is None:
            raise NotFoundError(f"no subject with id {subject_id}", subject_id=subject_id)
        gallery = gallery_of(self._gallery_row(row[1]))
        check_model(gallery, template.model_id)
        vec = check_vector(template.vector, gallery.dimension)
        sha = check_sha256(template.source_sha256)
        existing = self._one(f"SELECT {TEMPLATE_COLS} FROM templates WHERE subject_id = ? AND source_sha256 = ?",
                             (subject_id, sha))
        if existing is not None:
            return template_of(existing)
        key = self._data_key(subject_id)
        photo = None
        if template.photo is not None and gallery.keep_photos:
            photo = key.seal(bytes(template.photo), photo_aad(subject_id, sha))
        crop = None if template.crop is None else key.seal(bytes(template.crop), crop_aad(subject_id, sha))
        out = self._exec(f"INSERT INTO templates (subject_id, gallery_id, vector, quality, source_sha256, photo, "
                         f"crop, created_at) VALUES (?,?,?,?,?,?,?,?) RETURNING {TEMPLATE_COLS}",
                         (subject_id, row[0], key.seal_vector(vec, template_aad(subject_id, sha)),
                          quality_json(template.quality), sha, photo, crop, to_iso(utc_now()))).fetchone()
        self._touch(row[0]).adds.append((out[0], subject_id, vec))
        return template_of(out)

    def remove_template(self, template_id: int) -> None:
        row = self._one("SELECT gallery_id FROM templates WHERE id = ?", (int(template_id),))
        if row is None:
            raise NotFoundError(f"no template with id {template_id}", template_id=template_id)
        self._exec("DELETE FROM templates WHERE id = ?", (int(template_id),))
        self._touch(row[0]).removes.append(int(template_id))
        self.erased = True

    def bulk_enroll(self, gallery: str, subjects: Sequence[BulkSubject]) -> list[int]:
        """Add many subjects with their (encrypted) templates in few statements; returns their ids."""
        g = self._gallery_row(gallery)
        rows = bulk_rows(gallery_of(g), subjects)
        now = to_iso(utc_now())
        (s0,) = self._one("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'subjects'") or (0,)
        (t0,) = self._one("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'templates'") or (0,)
        sids = list(range(s0 + 1, s0 + 1 + len(subjects)))
        subject_rows, key_rows, template_rows = [], [], []
        delta, tid = self._touch(g[0]), t0
        for sid, s, tpls in zip(sids, subjects, rows, strict=True):
            subject_rows.append((sid, g[0], s.external_ref, s.display_name, now))
            key, wrapped = self._kek.new_data_key(sid)
            key_rows.append((sid, wrapped))
            for vec, quality, sha, photo in tpls:
                tid += 1
                sealed_photo = None if photo is None else key.seal(photo, photo_aad(sid, sha))
                template_rows.append((tid, sid, g[0], key.seal_vector(vec, template_aad(sid, sha)), quality, sha,
                                      sealed_photo, now))
                delta.adds.append((tid, sid, vec))
        with db_errors(f"bulk enrollment into '{gallery}'"):
            self._db.executemany("INSERT INTO subjects (id, gallery_id, external_ref, display_name, created_at) "
                                 "VALUES (?,?,?,?,?)", subject_rows)
            self._db.executemany("INSERT INTO subject_keys (subject_id, wrapped) VALUES (?,?)", key_rows)
            self._db.executemany("INSERT INTO templates (id, subject_id, gallery_id, vector, quality, source_sha256, "
                                 "photo, created_at) VALUES (?,?,?,?,?,?,?,?)", template_rows)
        return sids

    # -- governance records --------------------------------------------------------------
    def put_record(self, kind: str, record_id: str, data: Mapping[str, Any], *,
                   gallery: str | None = None, subject_id: int | None = None) -> Record:
        """Insert or replace the record ``(kind, record_id)``; ``created_at`` is kept on replace."""
        check_record_key(kind, record_id)
        if not isinstance(data, Mapping):
            raise InputError("a record's data must be a mapping")
        now = to_iso(utc_now())
        self._exec("INSERT INTO records (kind, record_id, gallery, subject_id, data, created_at, updated_at) "
                   "VALUES (?,?,?,?,?,?,?) ON CONFLICT (kind, record_id) DO UPDATE SET gallery = excluded.gallery, "
                   "subject_id = excluded.subject_id, data = excluded.data, updated_at = excluded.updated_at",
                   (kind, record_id, None if gallery is None else check_name(gallery),
                    None if subject_id is None else int(subject_id), dump_json(dict(data), "record data"), now, now))
        return self.get_record(kind, record_id)

    def delete_records(self, *, subject_id: int | None = None, kind: str | None = None,
                       record_id: str | None = None) -> int:
        """Delete the records matching every given filter (at least one); returns how many."""
        conds = [(c, v) for c, v in (("subject_id", subject_id), ("kind", kind), ("record_id", record_id))
                 if v is not None]
        if not conds:
            raise InputError("delete_records needs at least one of subject_id, kind, record_id")
        where = " AND ".join(f"{c} = ?" for c, _ in conds)
        return self._exec(f"DELETE FROM records WHERE {where}", tuple(v for _, v in conds)).rowcount

    # -- review evidence -------------------------------------------------------------------
    def put_evidence(self, evidence_id: str, data: bytes) -> None:
        """Keep ``data`` (a probe's face crop) under a fresh key of its own, wrapped by the KEK."""
        check_record_key("evidence", evidence_id)
        key, wrapped = self._kek.new_named_key(f"evidence:{evidence_id}")
        self._exec("INSERT OR REPLACE INTO evidence (id, wrapped, data, created_at) VALUES (?,?,?,?)",
                   (evidence_id, wrapped, key.seal(bytes(data), evidence_aad(evidence_id)), to_iso(utc_now())))

    def delete_evidence(self, evidence_id: str) -> bool:
        """Delete the evidence and its key; whether there was any."""
        gone = self._exec("DELETE FROM evidence WHERE id = ?", (evidence_id,)).rowcount > 0
        self.erased = self.erased or gone
        return gone

    # -- ledger ------------------------------------------------------------------------
    def append_ledger(self, fields: Mapping[str, Any]) -> LedgerRow:
        """Append an entry after the current head, in this transaction."""
        head = self.ledger_head()
        row, text = new_ledger_row(head.hash, head.seq + 1, fields)
        self._exec("INSERT INTO ledger (seq, prev_hash, hash, fields) VALUES (?,?,?,?)",
                   (row.seq, row.prev_hash, row.hash, text))
        return row


def iso_or_none(t: datetime | None) -> str | None:
    return None if t is None else to_iso(t)
