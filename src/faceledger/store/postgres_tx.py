"""Reads and writes of the PostgreSQL store on one pooled connection."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from faceledger.errors import (
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
    StorageFullError,
    StoreError,
    StoreUnavailableError,
)

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
    new_ledger_row,
    quality_json,
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
from .postgres_schema import create_hnsw, create_ivfflat, drop_indexes, drop_partition, make_partition, partition_name
from .reads import TEMPLATE_COLS, SqlReads

GALLERY_COLS = ("id, name, model_id, dimension, retention_days, thresholds, operating_point, keep_photos, "
                "quality_gate, created_at")


INDEX_KINDS = ("hnsw", "ivfflat", "none")
LISTS_MAX = 32_768  # pgvector's limit for IVFFlat lists and probes


@dataclass(frozen=True)
class HnswParams:
    """pgvector index parameters of new partitions and of ``search="pgvector"``, and memory for index builds.

    ``index="none"``: no pgvector index (the default of the store's in-memory search, which
    does not read one; an index already there is left as it is).

    ``index="hnsw"`` (default): each partition gets an HNSW index when it is created. At a
    million templates (bench/search_scale.py) pgvector 0.6.2 with these kept 90.8% of exact
    search's top answers at ef_search 400 (p95 47 ms); exact scans are slower still.

    ``index="ivfflat"``: an IVFFlat index needs rows to train its lists, so a partition has
    none (searches scan it exactly) until a bulk import of at least ``bulk_rebuild_min``
    templates that at least doubles it builds one, with ``lists`` lists (0: the partition's
    rows / 250, measured best at 1M: 4,000); searches read ``probes`` lists. At 1M
    (bench/pg_scale.py, timed interleaved with HNSW) 4,000 lists kept about as many of exact
    search's top answers as the HNSW index at the same latency, in an index half the size built
    in 1-9 minutes instead of 81, and is the one that reaches 0.99 (1,280 probes, p95 0.3 s
    on a loaded machine; HNSW stops at 0.97): docs/benchmarks.md, PostgreSQL at 1M.
    """

    m: int = 32
    ef_construction: int = 100
    ef_search: int = 400
    build_memory: str = "1GB"
    bulk_rebuild_min: int = 10_000  # a bulk import this big (and at least the partition's size) rebuilds the index
    index: str = "hnsw"  # the store's default is "none" with search="memory"
    lists: int = 0
    probes: int = 160

    def __post_init__(self) -> None:
        if self.index not in INDEX_KINDS:
            raise ConfigError(f"index must be one of {', '.join(INDEX_KINDS)}, not {self.index!r}")
        for name, low in (("lists", 0), ("probes", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= LISTS_MAX:
                raise ConfigError(f"{name} must be an integer in [{low}, {LISTS_MAX}], not {value!r}")

    def lists_for(self, rows: int) -> int:
        """IVFFlat lists for a partition of ``rows`` templates."""
        return self.lists or max(1, min(LISTS_MAX, rows // 250))


@contextmanager
def pg_errors(what: str) -> Iterator[None]:
    """Turn psycopg errors into the FaceLedger tree (unique violations: :class:`ConflictError`)."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError(f"{what}: {exc.diag.message_primary}") from None
    except psycopg.Error as exc:
        raise store_error(what, exc) from None


def store_error(what: str, exc: psycopg.Error) -> StoreError:
    """The FaceLedger error for a psycopg error: a full disk and a lost connection get their own types."""
    text = str(exc).strip()
    if isinstance(exc, psycopg.errors.DiskFull) or exc.sqlstate in ("53100", "53200"):
        return StorageFullError(f"{what}: the database server is out of disk space or memory; nothing of this "
                                f"operation was written: free space and retry ({text})")
    if isinstance(exc, psycopg.OperationalError) or (exc.sqlstate or "").startswith(("08", "57P")):
        return StoreUnavailableError(f"{what}: the connection to PostgreSQL was lost; nothing of this operation "
                                     f"was written: retry ({text})")
    return StoreError(f"{what}: PostgreSQL error: {text}")


def gallery_of(row: tuple) -> Gallery:
    return Gallery(name=row[1], model_id=row[2], dimension=row[3], retention_days=row[4], thresholds=row[5],
                   operating_point=row[6], keep_photos=row[7], quality_gate=row[8], created_at=row[9])


def subject_of(row: tuple) -> Subject:
    return Subject(id=row[0], gallery=row[1], external_ref=row[2], display_name=row[3], created_at=row[4],
                   template_count=row[5])


def template_of(row: tuple) -> StoredTemplate:
    return StoredTemplate(id=row[0], subject_id=row[1], quality=row[2], source_sha256=row[3],
                          created_at=row[4], has_photo=row[5])


def record_of(row: tuple) -> Record:
    return Record(kind=row[0], record_id=row[1], data=row[2], gallery=row[3], subject_id=row[4],
                  created_at=row[5], updated_at=row[6])


class PgReads(SqlReads):
    """Queries over one connection."""

    MARK = "%s"
    GALLERY_COLS = GALLERY_COLS
    _gallery_of = staticmethod(gallery_of)
    _subject_of = staticmethod(subject_of)
    _record_of = staticmethod(record_of)

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def _one(self, query: Any, params: Sequence[Any] | Mapping[str, Any] = ()) -> tuple | None:
        with pg_errors("read"):
            return self._conn.execute(query, params).fetchone()

    def _all(self, query: Any, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple]:
        with pg_errors("read"):
            return self._conn.execute(query, params).fetchall()


class PgTransaction(PgReads):
    """One transaction of a :class:`~faceledger.store.postgres.PostgresStore` (writers serialised by a lock)."""

    def __init__(self, conn: psycopg.Connection, hnsw: HnswParams) -> None:
        super().__init__(conn)
        self._hnsw = hnsw
        self.closed = False
        self.bulk_timings: dict[str, float] = {}  # seconds of the last bulk_enroll: "copy", "index"

    def _exec(self, query: Any, params: Sequence[Any] | Mapping[str, Any] = (), what: str = "write",
              savepoint: bool = False) -> psycopg.Cursor:
        """Run a write; ``savepoint`` for one that may fail expectedly, so the transaction stays usable."""
        if self.closed:
            raise StoreError("this transaction is finished: open a new one with store.transaction()")
        with pg_errors(what):
            if not savepoint:
                return self._conn.execute(query, params)
            with self._conn.transaction():
                return self._conn.execute(query, params)

    # -- galleries ---------------------------------------------------------------
    def create_gallery(self, name: str, settings: GallerySettings) -> Gallery:
        s = check_settings(settings)
        try:
            gid = self._exec("INSERT INTO galleries (name, model_id, dimension, retention_days, thresholds, "
                             "operating_point, keep_photos, quality_gate, created_at) "
                             "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                             (check_name(name), s.model_id, s.dimension, s.retention_days, Jsonb(s.thresholds),
                              s.operating_point, s.keep_photos, Jsonb(s.quality_gate), utc_now()),
                             what=f"create gallery '{name}'", savepoint=True).fetchone()[0]  # type: ignore[index]
        except ConflictError:
            raise ConflictError(f"a gallery named '{name}' already exists", gallery=name) from None
        with pg_errors("create the gallery's partition"):
            self._make_partition(gid, s.dimension)
        return self.get_gallery(name)

    def _make_partition(self, gallery_id: int, dimension: int) -> None:
        """The gallery's empty partition, with an HNSW index (an IVFFlat one waits for rows to train on)."""
        make_partition(self._conn, gallery_id, dimension)
        if self._hnsw.index == "hnsw":
            create_hnsw(self._conn, gallery_id, dimension, self._hnsw.m, self._hnsw.ef_construction)

    def update_gallery(self, name: str, **changes: Any) -> Gallery:
        s = updated_settings(self.get_gallery(name), changes)
        dump_json(s.quality_gate, "quality gate")
        self._exec("UPDATE galleries SET retention_days=%s, thresholds=%s, operating_point=%s, keep_photos=%s, "
                   "quality_gate=%s WHERE name=%s", (s.retention_days, Jsonb(s.thresholds), s.operating_point,
                                                     s.keep_photos, Jsonb(s.quality_gate), name))
        return self.get_gallery(name)

    def set_gallery_model(self, name: str, model_id: str, dimension: int) -> int:
        """Pin another model: deletes every template of the gallery (re-enroll afterwards); returns how many."""
        gid = self._gallery_row(name)[0]
        check_settings(GallerySettings(model_id, dimension))
        (n,) = self._one(sql.SQL("SELECT count(*) FROM {}").format(partition_name(gid))) or (0,)
        self._exec("UPDATE galleries SET model_id = %s, dimension = %s, thresholds = '{}', operating_point = NULL "
                   "WHERE id = %s", (model_id, dimension, gid))
        with pg_errors("replace the gallery's partition"):  # a new, empty partition with a new index
            drop_partition(self._conn, gid)
            self._make_partition(gid, dimension)
        return n

    def delete_gallery(self, name: str, *, cascade: bool = False) -> None:
        row = self._gallery_row(name)
        (count,) = self._one("SELECT count(*) FROM subjects WHERE gallery_id = %s", (row[0],)) or (0,)
        if count and not cascade:
            raise ConflictError(f"gallery '{name}' still has {count} subject(s): remove them or pass cascade",
                                gallery=name, subjects=count)
        self._exec("DELETE FROM galleries WHERE id = %s", (row[0],))
        with pg_errors("drop the gallery's partition"):
            drop_partition(self._conn, row[0])

    # -- subjects ------------------------------------------------------------------
    def add_subject(self, gallery: str, external_ref: str, display_name: str | None = None) -> Subject:
        gid = self._gallery_row(gallery)[0]
        check_text(external_ref, "external reference")
        if display_name is not None:
            check_text(display_name, "display name")
        try:
            sid = self._exec("INSERT INTO subjects (gallery_id, external_ref, display_name, created_at) "
                             "VALUES (%s,%s,%s,%s) RETURNING id",
                             (gid, external_ref, display_name, utc_now()), savepoint=True).fetchone()[0]  # type: ignore[index]
        except ConflictError:
            raise ConflictError(f"subject '{external_ref}' already exists in gallery '{gallery}'",
                                gallery=gallery, external_ref=external_ref) from None
        return self.get_subject(sid)

    def remove_subject(self, subject_id: int) -> Subject:
        subject = self.get_subject(subject_id)
        self._exec("DELETE FROM subjects WHERE id = %s", (subject.id,))  # cascades to its templates
        return subject

    def add_template(self, subject_id: int, template: NewTemplate) -> StoredTemplate:
        row = self._one("SELECT s.gallery_id, g.name FROM subjects s JOIN galleries g ON g.id = s.gallery_id "
                        "WHERE s.id = %s", (int(subject_id),))
        if row is None:
            raise NotFoundError(f"no subject with id {subject_id}", subject_id=subject_id)
        gallery = gallery_of(self._gallery_row(row[1]))
        check_model(gallery, template.model_id)
        vec = check_vector(template.vector, gallery.dimension)
        sha = check_sha256(template.source_sha256)
        existing = self._one(f"SELECT {TEMPLATE_COLS} FROM templates WHERE gallery_id = %s AND subject_id = %s "
                             "AND source_sha256 = %s", (row[0], subject_id, sha))
        if existing is not None:
            return template_of(existing)
        photo = bytes(template.photo) if template.photo is not None and gallery.keep_photos else None
        crop = None if template.crop is None else bytes(template.crop)
        out = self._exec(f"INSERT INTO templates (gallery_id, subject_id, embedding, quality, source_sha256, photo, "
                         f"crop, created_at) VALUES (%s,%s,%s,%s::jsonb,%s,%s,%s,%s) RETURNING {TEMPLATE_COLS}",
                         (row[0], subject_id, vec, quality_json(template.quality), sha, photo, crop,
                          utc_now())).fetchone()
        return template_of(out)  # type: ignore[arg-type]

    def remove_template(self, template_id: int) -> None:
        if self._exec("DELETE FROM templates WHERE id = %s", (int(template_id),)).rowcount == 0:
            raise NotFoundError(f"no template with id {template_id}", template_id=template_id)

    def bulk_enroll(self, gallery: str, subjects: Sequence[BulkSubject]) -> list[int]:
        """Add many subjects with their templates by ``COPY``; returns their ids in order.

        A large import into a partition at most its size rebuilds the partition's index
        afterwards (one bulk build is far faster than row-by-row insertion; an IVFFlat index
        is built, or retrained on all the rows, only here).
        """
        g = self.get_gallery(gallery)
        gid = self._gallery_row(gallery)[0]
        rows = bulk_rows(g, subjects)
        n_tpl = sum(len(s.templates) for s in subjects)
        ids = [r[0] for r in self._all("SELECT nextval('subjects_id_seq') FROM generate_series(1, %s)",
                                       (len(subjects),))]
        tids = iter([r[0] for r in self._all("SELECT nextval('templates_id_seq') FROM generate_series(1, %s)",
                                             (n_tpl,))])
        (existing,) = self._one(sql.SQL("SELECT count(*) FROM {}").format(partition_name(gid))) or (0,)
        rebuild = n_tpl >= self._hnsw.bulk_rebuild_min and n_tpl >= existing and self._hnsw.index != "none"
        now = utc_now()
        t0 = time.perf_counter()
        with pg_errors(f"bulk enrollment into '{gallery}'"):
            if rebuild:
                drop_indexes(self._conn, gid)
            with self._conn.cursor().copy("COPY subjects (id, gallery_id, external_ref, display_name, created_at) "
                                          "FROM STDIN") as copy:
                for sid, s in zip(ids, subjects, strict=True):
                    copy.write_row((sid, gid, s.external_ref, s.display_name, now))
            with self._conn.cursor().copy("COPY templates (id, gallery_id, subject_id, embedding, quality, "
                                          "source_sha256, photo, created_at) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["bigint", "bigint", "bigint", "vector", "jsonb", "text", "bytea", "timestamptz"])
                for sid, tpls in zip(ids, rows, strict=True):
                    for vec, quality, sha, photo in tpls:
                        copy.write_row((next(tids), gid, sid, vec, Jsonb(quality, dumps=str), sha, photo, now))
            t1 = time.perf_counter()
            if rebuild:
                self._conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
                    sql.Literal(self._hnsw.build_memory)))
                if self._hnsw.index == "hnsw":
                    create_hnsw(self._conn, gid, g.dimension, self._hnsw.m, self._hnsw.ef_construction)
                else:
                    create_ivfflat(self._conn, gid, g.dimension, self._hnsw.lists_for(existing + n_tpl))
        self.bulk_timings = {"copy": t1 - t0, "index": time.perf_counter() - t1}
        return ids

    # -- governance records --------------------------------------------------------------
    def put_record(self, kind: str, record_id: str, data: Mapping[str, Any], *,
                   gallery: str | None = None, subject_id: int | None = None) -> Record:
        check_record_key(kind, record_id)
        if not isinstance(data, Mapping):
            raise InputError("a record's data must be a mapping")
        text = dump_json(dict(data), "record data")
        now = utc_now()
        self._exec("INSERT INTO records (kind, record_id, gallery, subject_id, data, created_at, updated_at) "
                   "VALUES (%s,%s,%s,%s,%s::jsonb,%s,%s) ON CONFLICT (kind, record_id) DO UPDATE SET "
                   "gallery = excluded.gallery, subject_id = excluded.subject_id, data = excluded.data, "
                   "updated_at = excluded.updated_at",
                   (kind, record_id, None if gallery is None else check_name(gallery),
                    None if subject_id is None else int(subject_id), text, now, now))
        return self.get_record(kind, record_id)

    def delete_records(self, *, subject_id: int | None = None, kind: str | None = None,
                       record_id: str | None = None) -> int:
        conds = [(c, v) for c, v in (("subject_id", subject_id), ("kind", kind), ("record_id", record_id))
                 if v is not None]
        if not conds:
            raise InputError("delete_records needs at least one of subject_id, kind, record_id")
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c, _ in conds)
        return self._exec(sql.SQL("DELETE FROM records WHERE {}").format(where), [v for _, v in conds]).rowcount

    # -- review evidence -------------------------------------------------------------------
    def put_evidence(self, evidence_id: str, data: bytes) -> None:
        """Keep ``data`` (a probe's face crop); protected like templates on this store (see postgres.py)."""
        check_record_key("evidence", evidence_id)
        self._exec("INSERT INTO evidence (id, data, created_at) VALUES (%s,%s,%s) ON CONFLICT (id) DO UPDATE "
                   "SET data = excluded.data, created_at = excluded.created_at", (evidence_id, bytes(data), utc_now()))

    def delete_evidence(self, evidence_id: str) -> bool:
        return self._exec("DELETE FROM evidence WHERE id = %s", (evidence_id,)).rowcount > 0

    # -- ledger ------------------------------------------------------------------------
    def append_ledger(self, fields: Mapping[str, Any]) -> LedgerRow:
        head = self.ledger_head()
        row, text = new_ledger_row(head.hash, head.seq + 1, fields)
        self._exec("INSERT INTO ledger (seq, prev_hash, hash, fields) VALUES (%s,%s,%s,%s)",
                   (row.seq, row.prev_hash, row.hash, text))
        return row
