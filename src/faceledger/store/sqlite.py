"""The embedded store: one SQLite file, encrypted templates, in-memory exact / HNSW search.

* ``journal_mode=WAL``, ``synchronous=FULL`` (a commit survives power loss),
  ``foreign_keys=ON``, ``secure_delete=ON`` (freed pages are zeroed). Writers are
  serialised by ``BEGIN IMMEDIATE`` (across processes) and a lock (across threads).
* Templates are AES-256-GCM under per-subject data keys (:mod:`.crypto`). After a
  transaction that deleted biometric data, the WAL is checkpointed and truncated
  so the deleted pages' old images do not linger in it.
* Each gallery's templates are decrypted into a :class:`~.memindex.GalleryIndex`
  (int8 codes; the few rows a search re-scores exactly are decrypted again)
  on first search and kept in step after every commit. A change counter per
  gallery (incremented by every transaction that adds or removes its templates)
  tells a process that *another* process changed it; the index then re-reads only
  the template ids and decrypts the new ones.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from faceledger.errors import DataKeyError, InputError, NotFoundError, StoreError

from ._common import check_model, check_name, check_probes, to_iso
from ._export import export_dict
from .base import Candidate, Gallery, GalleryStats, LedgerHead, LedgerRow, Record, StoredTemplate, Subject
from .crypto import Kek, load_or_create_key_file, read_key_file, write_key_file
from .memindex import AnnOptions, GalleryIndex
from .reads import RECORD_COLS, SUBJECT_SQL, TEMPLATE_COLS
from .sqlite_schema import migrate
from .sqlite_tx import (
    GALLERY_COLS,
    SqliteReads,
    SqliteTransaction,
    crop_aad,
    db_errors,
    evidence_aad,
    gallery_of,
    photo_aad,
    record_of,
    subject_of,
    template_aad,
    template_of,
)

__all__ = ["SqliteStore", "open_sqlite"]

SQLITE_MAGIC = b"SQLite format 3\x00"


def _connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection with the store's pragmas; a file that is not SQLite gives :class:`StoreError`."""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            if f.read(16) != SQLITE_MAGIC:
                raise StoreError(f"{path} is not a SQLite database (corrupted or another file)")
    if not path.exists():  # personal data: readable by the owner only (SQLite gives the WAL the same mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    with db_errors(f"open {path}"):
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot use WAL journal mode (got {mode})")
            for pragma in ("synchronous=FULL", "foreign_keys=ON", "secure_delete=ON",
                           f"busy_timeout={int(busy_timeout_s * 1000)}"):
                db.execute(f"PRAGMA {pragma}")
        except BaseException:
            db.close()
            raise
    return db


class SqliteStore:
    """A gallery store in one SQLite file (see the module docstring).

    ``key`` (32 bytes) or ``key_file`` give the key-encryption key; by default it is
    ``<path>.key``, created with mode 0600 when the database is created. Opening an
    existing database without its key, or with another key, raises
    :class:`~faceledger.errors.DataKeyError` and writes nothing.
    """

    backend = "sqlite"

    def __init__(self, path: str | Path, *, key: bytes | None = None, key_file: str | Path | None = None,
                 ann: AnnOptions | None = None, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.key_file = Path(key_file) if key_file else self.path.with_name(self.path.name + ".key")
        self.ann = ann or AnnOptions()
        self._operator_key = key is not None
        self._busy = busy_timeout_s
        self._lock = threading.RLock()
        self._tx: SqliteTransaction | None = None
        self._indexes: dict[int, GalleryIndex] = {}
        self.last_checkpoint: tuple[int, int, int] | None = None
        self._erase_pending = False
        self._db = _connect(self.path, busy_timeout_s)
        try:
            with db_errors(f"migrate {self.path}"):
                migrate(self._db)
            self._kek = self._load_kek(key)
        except BaseException:
            self._db.close()
            raise
        self._reads = SqliteReads(self._db)

    @property
    def _pending_key_file(self) -> Path:
        return self.key_file.with_name(self.key_file.name + ".new")

    def _load_kek(self, key: bytes | None) -> Kek:
        with db_errors("key check"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = 'kek_check'").fetchone()
                kek = Kek(key if key is not None else load_or_create_key_file(self.key_file, create=row is None))
                if row is None:
                    self._db.execute("INSERT INTO meta VALUES ('kek_check', ?)", (kek.check_value(),))
                elif key is None:
                    kek = self._finish_rotation(kek, row[0])
                else:
                    kek.verify(row[0])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return kek

    def _finish_rotation(self, kek: Kek, check: bytes) -> Kek:
        """Complete (or discard) a key rotation interrupted by a crash; returns the key that fits."""
        pending = self._pending_key_file
        try:
            kek.verify(check)
        except DataKeyError:
            if not pending.exists():
                raise
            new = Kek(read_key_file(pending))
            new.verify(check)  # the rotation committed: its key file replaces the old one
            write_key_file(self.key_file, read_key_file(pending))
            pending.unlink(missing_ok=True)
            return new
        return kek  # a pending file here is from a rotation that never committed (or is under way)

    def rotate_key(self, new_key: bytes | None = None) -> None:
        """Re-wrap every subject's data key under a new key-encryption key, in one transaction.

        With a key file, a fresh key replaces it (written first as ``<key file>.new``;
        a crash in between is completed on the next open). With an operator key, pass
        ``new_key`` and keep it. Copies of the database made before the rotation stay
        readable only with the old key: destroying it makes them unreadable as a whole.
        Rotate with no other process using the store (they would keep the old key).
        """
        with self._lock:
            if self._tx is not None:
                raise StoreError("rotate the key outside any transaction")
            operator = self._operator_key
            if operator and new_key is None:
                raise InputError("this store was opened with an operator key: pass new_key=...")
            raw = new_key if new_key is not None else os.urandom(32)
            new = Kek(raw)
            if not operator:
                write_key_file(self._pending_key_file, raw)
            with db_errors("key rotation"):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._db.execute("SELECT subject_id, wrapped FROM subject_keys").fetchall()
                    self._db.executemany("UPDATE subject_keys SET wrapped = ? WHERE subject_id = ?",
                                         [(self._kek.rewrap(sid, w, new), sid) for sid, w in rows])
                    self._db.execute("UPDATE meta SET value = ? WHERE key = 'kek_check'", (new.check_value(),))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._pending_key_file.unlink(missing_ok=True)
                    raise
            if not operator:
                write_key_file(self.key_file, raw)
                self._pending_key_file.unlink(missing_ok=True)
            self._kek = new
            self._erase_pending = not self.checkpoint()  # the old wrapped keys leave the WAL

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for index in self._indexes.values():
                index.clear()  # overwritten, not just let go: erased faces leave this process's memory
            self._indexes.clear()
            if self._erase_pending:
                self.checkpoint()
            self._db.close()

    # -- transactions ----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; an exception in the block rolls everything back."""
        with self._lock:
            if self._tx is not None:
                raise StoreError("a transaction is already open on this store (transactions do not nest)")
            with db_errors("begin a write transaction (database busy?)"):
                self._db.execute("BEGIN IMMEDIATE")
            tx = self._tx = SqliteTransaction(self._db, self._kek)
            try:
                yield tx
                with db_errors("commit"):
                    self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    with db_errors("roll back"):  # SQLite may have rolled back already (disk full, I/O error)
                        self._db.execute("ROLLBACK")
                raise
            finally:
                tx.closed, self._tx = True, None
            self._after_commit(tx)

    def _after_commit(self, tx: SqliteTransaction) -> None:
        for gid, delta in tx.deltas.items():
            index = self._indexes.get(gid)
            if index is None:
                continue
            if delta.dropped:
                self._indexes.pop(gid).clear()
            elif index.version == delta.before:
                if delta.removes:
                    index.remove(np.array(delta.removes, np.int64))
                if delta.adds:
                    index.add(np.array([a[0] for a in delta.adds], np.int64),
                              np.array([a[1] for a in delta.adds], np.int64), np.stack([a[2] for a in delta.adds]))
                index.version = delta.before + 1
            # else: another process changed the gallery meanwhile; the next search re-syncs
        if tx.erased or self._erase_pending:  # readers may keep the WAL busy: retry after later commits
            self._erase_pending = not self.checkpoint()

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it; ``False`` if readers kept it busy."""
        with self._lock, db_errors("checkpoint"):
            self.last_checkpoint = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return self.last_checkpoint[0] == 0

    def backup(self, target: str | Path) -> Path:
        """A consistent copy of the database (SQLite backup API). The key file is *not* copied."""
        target = Path(target)
        with self._lock, db_errors(f"backup to {target}"):
            dest = sqlite3.connect(target)
            try:
                self._db.backup(dest)
            finally:
                dest.close()
        return target

    # -- reads -------------------------------------------------------------------------
    def get_gallery(self, name: str) -> Gallery:
        with self._lock:
            return self._reads.get_gallery(name)

    def list_galleries(self) -> list[Gallery]:
        with self._lock:
            return [gallery_of(r) for r in self._reads._all(f"SELECT {GALLERY_COLS} FROM galleries ORDER BY name")]

    def gallery_stats(self, name: str) -> GalleryStats:
        with self._lock:
            gid = self._reads._gallery_row(name)[0]
            s = self._reads._one("SELECT count(*) FROM subjects WHERE gallery_id = ?", (gid,))
            t = self._reads._one("SELECT count(*) FROM templates WHERE gallery_id = ?", (gid,))
            return GalleryStats(name, s[0], t[0])  # type: ignore[index]

    def get_subject(self, subject_id: int) -> Subject:
        with self._lock:
            return self._reads.get_subject(subject_id)

    def find_subject(self, gallery: str, external_ref: str) -> Subject:
        with self._lock:
            return self._reads.find_subject(gallery, external_ref)

    def list_subjects(self, gallery: str, *, created_before: datetime | None = None,
                      limit: int | None = None, offset: int = 0) -> list[Subject]:
        """Subjects of ``gallery`` by id; ``created_before`` selects those enrolled earlier (retention)."""
        with self._lock:
            self._reads._gallery_row(gallery)
            sql, params = SUBJECT_SQL + "WHERE g.name = ?", [gallery]
            if created_before is not None:
                sql, params = sql + " AND s.created_at < ?", [*params, to_iso(created_before)]
            sql += " ORDER BY s.id LIMIT ? OFFSET ?"
            return [subject_of(r) for r in self._reads._all(sql, (*params, -1 if limit is None else limit, offset))]

    def list_templates(self, subject_id: int) -> list[StoredTemplate]:
        with self._lock:
            self._reads.get_subject(subject_id)
            rows = self._reads._all(f"SELECT {TEMPLATE_COLS} FROM templates WHERE subject_id = ? ORDER BY id",
                                    (subject_id,))
            return [template_of(r) for r in rows]

    def get_photo(self, template_id: int) -> bytes | None:
        """The kept photo of a template (decrypted), or ``None`` if none was kept."""
        with self._lock:
            row = self._reads._one("SELECT t.subject_id, t.source_sha256, t.photo, k.wrapped FROM templates t "
                                   "JOIN subject_keys k USING (subject_id) WHERE t.id = ?", (int(template_id),))
        if row is None:
            raise NotFoundError(f"no template with id {template_id}", template_id=template_id)
        if row[2] is None:
            return None
        return self._kek.unwrap(row[0], row[3]).open(row[2], photo_aad(row[0], row[1]), "a kept photo")

    def get_crop(self, template_id: int) -> bytes | None:
        """The enrolled face crop of a template (decrypted), or ``None`` if none was kept."""
        with self._lock:
            row = self._reads._one("SELECT t.subject_id, t.source_sha256, t.crop, k.wrapped FROM templates t "
                                   "JOIN subject_keys k USING (subject_id) WHERE t.id = ?", (int(template_id),))
        if row is None:
            raise NotFoundError(f"no template with id {template_id}", template_id=template_id)
        return None if row[2] is None else self._kek.unwrap(row[0], row[3]).open(row[2], crop_aad(row[0], row[1]),
                                                                                   "a face crop")

    def get_evidence(self, evidence_id: str) -> bytes | None:
        """A probe's face crop kept for review (decrypted), or ``None`` (never kept, or deleted)."""
        with self._lock:
            row = self._reads._one("SELECT wrapped, data FROM evidence WHERE id = ?", (evidence_id,))
        if row is None:
            return None
        key = self._kek.unwrap_named(f"evidence:{evidence_id}", row[0])
        return key.open(row[1], evidence_aad(evidence_id), "review evidence")

    def get_record(self, kind: str, record_id: str) -> Record:
        with self._lock:
            return self._reads.get_record(kind, record_id)

    def list_records(self, kind: str, *, gallery: str | None = None, subject_id: int | None = None) -> list[Record]:
        with self._lock:
            return self._reads.list_records(kind, gallery=gallery, subject_id=subject_id)

    def ledger_head(self) -> LedgerHead:
        with self._lock:
            return self._reads.ledger_head()

    def ledger_rows(self, start_seq: int = 1, stop_seq: int | None = None) -> Iterator[tuple[int, str, str, str]]:
        """Raw ledger rows ``(seq, prev_hash, hash, fields JSON text)`` with ``start_seq <= seq <= stop_seq``.

        Streamed in ``seq`` order from one consistent snapshot (committed entries only);
        the text is exactly what was hashed, for fast verification without parsing.
        """
        db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, timeout=self._busy,
                             isolation_level=None)
        try:
            with db_errors("read the ledger"):
                db.execute("BEGIN")
                yield from db.execute("SELECT seq, prev_hash, hash, fields FROM ledger WHERE seq BETWEEN ? AND ? "
                                      "ORDER BY seq", (start_seq, 2**63 - 1 if stop_seq is None else stop_seq))
        finally:
            db.close()

    def iter_ledger(self, start_seq: int = 1, stop_seq: int | None = None) -> Iterator[LedgerRow]:
        """Ledger entries (fields parsed) with ``start_seq <= seq <= stop_seq``, in order."""
        for seq, prev, h, fields in self.ledger_rows(start_seq, stop_seq):
            yield LedgerRow(seq, prev, h, json.loads(fields))

    def subject_export(self, subject_id: int) -> dict[str, Any]:
        """Everything held about a subject, for a data-subject access request (no vectors, no photos)."""
        with self._lock:
            subject = self._reads.get_subject(subject_id)
            templates = self.list_templates(subject_id)
            records = [record_of(r) for r in self._reads._all(
                f"SELECT {RECORD_COLS} FROM records WHERE subject_id = ? ORDER BY kind, record_id", (subject_id,))]
        return export_dict(subject, templates, records)

    # -- search ------------------------------------------------------------------------
    def search(self, gallery: str, probes: np.ndarray, k: int = 5, *, model_id: str | None = None,
               exact: bool = False) -> list[list[Candidate]]:
        """Top-``k`` subjects for each probe row, by best template cosine (``exact`` skips HNSW)."""
        with self._lock:
            if self._tx is None:  # one read snapshot: gallery version, templates, references
                self._db.execute("BEGIN")
            try:
                row = self._reads._gallery_row(gallery)
                self._check_committed(row[0], gallery)
                check_model((row[1], row[2]), model_id)
                p = check_probes(probes, row[3], k)
                index = self._synced_index(row[0], row[3], row[10])
                hits = index.search(p, k, exact=exact)
                refs = self._refs({sid for h in hits for sid, _, _ in h})
            finally:
                if self._tx is None and self._db.in_transaction:
                    self._db.execute("COMMIT")
        return [[Candidate(sid, refs[sid], score, r + 1, tid) for r, (sid, score, tid) in enumerate(h)]
                for h in hits]

    def _refs(self, sids: set[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        ids = sorted(sids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out.update(self._reads._all(f"SELECT id, external_ref FROM subjects WHERE id IN "
                                        f"({','.join('?' * len(chunk))})", tuple(chunk)))
        return out

    def index(self, gallery: str) -> GalleryIndex:
        """The in-memory index of ``gallery``, loaded and in step with the database."""
        with self._lock:
            row = self._reads._gallery_row(check_name(gallery))
            self._check_committed(row[0], gallery)
            return self._synced_index(row[0], row[3], row[10])

    def warm(self, gallery: str) -> int:
        """Load ``gallery``'s index now, as its first search would; the templates it holds."""
        index = self.index(gallery)
        index.prepare()
        return len(index)

    def _check_committed(self, gid: int, name: str) -> None:
        """The index follows committed data only: refuse to search a gallery this open transaction changed."""
        if self._tx is not None and gid in self._tx.deltas:
            raise StoreError(f"gallery '{name}' has uncommitted changes in this transaction: search it after commit")

    def _synced_index(self, gid: int, dimension: int, version: int) -> GalleryIndex:
        index = self._indexes.get(gid)
        if index is not None and index.dimension != dimension:  # the gallery's model changed
            index.clear()
            index = None
        if index is None:
            index = self._indexes[gid] = GalleryIndex(dimension, self.ann, version=-1, lock=self._lock,
                                                      exact=lambda tids: self._exact_rows(tids, dimension))
        if index.version != version:
            present = {r[0] for r in self._reads._all("SELECT id FROM templates WHERE gallery_id = ?", (gid,))}
            have = index.template_ids
            index.remove(np.array(sorted(have - present), np.int64))
            new = sorted(present - have)
            for i in range(0, len(new), 20000):
                index.add(*self._decrypt(new[i:i + 20000], dimension))
            index.version = version
        return index

    def _decrypt(self, tids: list[int], dimension: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Template ids, subject ids and decrypted vectors of ``tids`` (one data-key unwrap per subject)."""
        with self._lock:
            rows = self._reads._all(
                "SELECT t.id, t.subject_id, t.source_sha256, t.vector, k.wrapped FROM templates t "
                "JOIN subject_keys k USING (subject_id) WHERE t.id IN (SELECT value FROM json_each(?)) "
                "ORDER BY t.subject_id", (f"[{','.join(map(str, tids))}]",))
        vecs = np.empty((len(rows), dimension), np.float32)
        key, key_sid = None, None
        for j, (_, sid, sha, blob, wrapped) in enumerate(rows):
            if sid != key_sid:
                key, key_sid = self._kek.unwrap(sid, wrapped), sid
            vecs[j] = key.open_vector(blob, template_aad(sid, sha), dimension)  # type: ignore[union-attr]
        return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64), vecs

    def _exact_rows(self, tids: np.ndarray, dimension: int) -> np.ndarray:
        """Decrypted float32 rows of ``tids`` in that order: the exact re-score of a search."""
        got, _, vecs = self._decrypt([int(t) for t in tids], dimension)
        where = {t: i for i, t in enumerate(got.tolist())}
        try:
            return vecs[[where[int(t)] for t in tids]]
        except KeyError:
            raise StoreError("templates of the in-memory index are missing from the database: "
                             "search again (another process changed the gallery)") from None

def open_sqlite(path: str | Path, **options: Any) -> SqliteStore:
    """Open (creating if needed) the SQLite store at ``path``."""
    try:
        return SqliteStore(path, **options)
    except TypeError as exc:
        raise StoreError(f"invalid SQLite store option: {exc}") from None

