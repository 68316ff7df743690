"""The scale-out store: PostgreSQL with pgvector (psycopg 3, connection pool).

* Each gallery's templates are a partition of ``templates`` (:mod:`.postgres_schema`).
* Searches are exact, from the galleries each process holds in memory and keeps in step
  with the database through a change log (:mod:`.pg_memory`); with ``search="pgvector"``
  they read the partition's HNSW (or, with ``index="ivfflat"``, IVFFlat) cosine index
  instead.
* Writers are serialised by a transaction-level advisory lock taken when the
  transaction begins, so ledger appends see the head left by the previous
  writer, and the chain is the same as SQLite's (``faceledger.core.chain``).
* Vectors are stored in clear in a ``vector`` column so the server can search
  them: protect them with the server's disk encryption (managed services
  encrypt storage and backups) and TLS (``sslmode=verify-full``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from faceledger.errors import ConfigError, InputError, NotFoundError, StoreError, StoreUnavailableError

from ._common import check_model, check_name, check_probes, rank_subjects
from ._export import export_dict
from .base import Candidate, Gallery, GalleryStats, LedgerHead, LedgerRow, Record, StoredTemplate, Subject
from .memindex import AnnOptions, GalleryIndex
from .pg_memory import MemorySearch, prune_changes
from .postgres_schema import WRITER_LOCK, migrate, partition_name, vector_type
from .postgres_tx import (
    GALLERY_COLS,
    HnswParams,
    PgReads,
    PgTransaction,
    gallery_of,
    pg_errors,
    record_of,
    store_error,
    subject_of,
    template_of,
)
from .reads import RECORD_COLS, SUBJECT_SQL, TEMPLATE_COLS

__all__ = ["PostgresStore", "open_postgres"]

log = logging.getLogger("faceledger.store")

EF_SEARCH_MAX = 1000  # pgvector's limit for hnsw.ef_search
SEARCH_KINDS = ("memory", "pgvector")
SYNC_SECONDS_MAX = 86_400.0  # the follower thread's longest pause (the change log keeps a day)
PRUNE_EVERY_S = 3600.0  # a writer prunes the template change log at most this often (per store object)


def default_index(search: str) -> str:
    """The pgvector index new partitions get: none for the in-memory search, which reads none."""
    return "none" if search == "memory" else "hnsw"


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)
    conn.execute("SET TIME ZONE 'UTC'")


class PostgresStore:
    """A gallery store in a PostgreSQL database with the ``vector`` extension."""

    backend = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, hnsw: HnswParams | None = None,
                 timeout_s: float = 30.0, search: str = "memory", sync_seconds: float = 30.0,
                 ann: AnnOptions | None = None) -> None:
        if search not in SEARCH_KINDS:
            raise ConfigError(f"search must be one of {', '.join(SEARCH_KINDS)}, not {search!r}")
        if (isinstance(sync_seconds, bool) or not isinstance(sync_seconds, int | float)
                or not 0 <= sync_seconds <= SYNC_SECONDS_MAX):
            raise ConfigError(f"sync_seconds must be a number >= 0 and <= {SYNC_SECONDS_MAX:g}, not {sync_seconds!r}")
        self.hnsw = hnsw or HnswParams(index=default_index(search))
        with pg_errors("connect to PostgreSQL"):
            with psycopg.connect(url, autocommit=True, connect_timeout=int(timeout_s)) as conn:
                migrate(conn)
            self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size, timeout=timeout_s,
                                        kwargs={"autocommit": True}, configure=_configure, open=True,
                                        name="faceledger")
        self._local = threading.local()
        self._pruned_at = float("-inf")  # the first write transaction prunes
        self._memory = None if search == "pgvector" else MemorySearch(self._conn, ann or AnnOptions(), sync_seconds)

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
        self._pool.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailableError(f"no database connection available: {exc}") from None
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"database connection failed: {exc}") from None

    # -- transactions ----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[PgTransaction]:
        """A transaction holding the writers' lock; an exception in the block rolls everything back."""
        if getattr(self._local, "tx", None) is not None:
            raise StoreError("a transaction is already open on this store in this thread (they do not nest)")
        with self._conn() as conn:
            tx = None
            try:
                with conn.transaction():
                    with pg_errors("take the writers' lock"):
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
                    tx = self._local.tx = PgTransaction(conn, self.hnsw)
                    yield tx
                    if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                        self._prune(conn)
            except psycopg.Error as exc:  # raised by COMMIT (or by the rollback of a lost connection)
                raise store_error("commit", exc) from None
            finally:
                if tx is not None:
                    tx.closed = True
                self._local.tx = None

    def _prune(self, conn: psycopg.Connection) -> None:
        """Prune the change log in a savepoint: housekeeping that fails must not undo the caller's writes."""
        try:
            with conn.transaction():
                prune_changes(conn)
        except psycopg.Error as exc:
            log.warning("could not prune the template change log (tried again later): %s", exc)
        self._pruned_at = time.monotonic()

    # -- reads -------------------------------------------------------------------------
    def _read(self) -> Any:
        return _Reader(self)

    def get_gallery(self, name: str) -> Gallery:
        with self._read() as r:
            return r.get_gallery(name)

    def list_galleries(self) -> list[Gallery]:
        with self._read() as r:
            return [gallery_of(x) for x in r._all(f"SELECT {GALLERY_COLS} FROM galleries ORDER BY name")]

    def gallery_stats(self, name: str) -> GalleryStats:
        with self._read() as r:
            gid = r._gallery_row(name)[0]
            (s,) = r._one("SELECT count(*) FROM subjects WHERE gallery_id = %s", (gid,))
            (t,) = r._one(sql.SQL("SELECT count(*) FROM {}").format(partition_name(gid)))
            return GalleryStats(name, s, t)

    def get_subject(self, subject_id: int) -> Subject:
        with self._read() as r:
            return r.get_subject(subject_id)

    def find_subject(self, gallery: str, external_ref: str) -> Subject:
        with self._read() as r:
            return r.find_subject(gallery, external_ref)

    def list_subjects(self, gallery: str, *, created_before: datetime | None = None,
                      limit: int | None = None, offset: int = 0) -> list[Subject]:
        with self._read() as r:
            r._gallery_row(gallery)
            query, params = SUBJECT_SQL + "WHERE g.name = %s", [gallery]
            if created_before is not None:
                query, params = query + " AND s.created_at < %s", [*params, created_before]
            query += " ORDER BY s.id LIMIT %s OFFSET %s"
            return [subject_of(x) for x in r._all(query, [*params, limit, offset])]

    def list_templates(self, subject_id: int) -> list[StoredTemplate]:
        with self._read() as r:
            r.get_subject(subject_id)
            return [template_of(x) for x in r._all(
                f"SELECT {TEMPLATE_COLS} FROM templates WHERE subject_id = %s ORDER BY id", (subject_id,))]

    def get_photo(self, template_id: int) -> bytes | None:
        with self._read() as r:
            row = r._one("SELECT photo FROM templates WHERE id = %s", (int(template_id),))
        if row is None:
            raise NotFoundError(f"no template with id {template_id}", template_id=template_id)
        return None if row[0] is None else bytes(row[0])

    def get_crop(self, template_id: int) -> bytes | None:
        with self._read() as r:
            row = r._one("SELECT crop FROM templates WHERE id = %s", (int(template_id),))
        if row is None:
            raise NotFoundError(f"no template with id {template_id}", template_id=template_id)
        return None if row[0] is None else bytes(row[0])

    def get_evidence(self, evidence_id: str) -> bytes | None:
        with self._read() as r:
            row = r._one("SELECT data FROM evidence WHERE id = %s", (evidence_id,))
        return None if row is None else bytes(row[0])

    def get_record(self, kind: str, record_id: str) -> Record:
        with self._read() as r:
            return r.get_record(kind, record_id)

    def list_records(self, kind: str, *, gallery: str | None = None, subject_id: int | None = None) -> list[Record]:
        with self._read() as r:
            return r.list_records(kind, gallery=gallery, subject_id=subject_id)

    def ledger_head(self) -> LedgerHead:
        with self._read() as r:
            return r.ledger_head()

    def ledger_rows(self, start_seq: int = 1, stop_seq: int | None = None) -> Iterator[tuple[int, str, str, str]]:
        """Raw ledger rows ``(seq, prev_hash, hash, fields JSON text)``, ``start_seq <= seq <= stop_seq``.

        Streamed in ``seq`` order by a server-side cursor from one snapshot.
        """
        with self._conn() as conn, conn.transaction(), pg_errors("read the ledger"):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor(name="faceledger_ledger") as cur:
                cur.itersize = 10_000
                cur.execute("SELECT seq, prev_hash, hash, fields FROM ledger WHERE seq BETWEEN %s AND %s "
                            "ORDER BY seq", (start_seq, 2**63 - 1 if stop_seq is None else stop_seq))
                yield from cur

    def iter_ledger(self, start_seq: int = 1, stop_seq: int | None = None) -> Iterator[LedgerRow]:
        """Ledger entries (fields parsed) with ``start_seq <= seq <= stop_seq``, in order."""
        for seq, prev, h, fields in self.ledger_rows(start_seq, stop_seq):
            yield LedgerRow(seq, prev, h, json.loads(fields))

    def subject_export(self, subject_id: int) -> dict[str, Any]:
        with self._read() as r:
            subject = r.get_subject(subject_id)
            templates = [template_of(x) for x in r._all(
                f"SELECT {TEMPLATE_COLS} FROM templates WHERE subject_id = %s ORDER BY id", (subject_id,))]
            records = [record_of(x) for x in r._all(
                f"SELECT {RECORD_COLS} FROM records WHERE subject_id = %s ORDER BY kind, record_id", (subject_id,))]
        return export_dict(subject, templates, records)

    # -- search ------------------------------------------------------------------------
    def search(self, gallery: str, probes: np.ndarray, k: int = 5, *, model_id: str | None = None,
               exact: bool = False, ef_search: int | None = None) -> list[list[Candidate]]:
        """Top-``k`` subjects per probe row by best template cosine.

        ``search="memory"`` (the default): the exact top-k, from the gallery held in this
        process and kept in step with the database (:mod:`.pg_memory`); a gallery's first searches
        in this process, unless :meth:`warm` read it, are PostgreSQL's exact scans of its partition
        instead (0.4 s a probe at a million, where reading it takes 5 s), until about as many
        probes as a read costs (:data:`.pg_memory.SQL_SCANS_PER_READ`); the next search reads it.
        ``search="pgvector"``:
        through the partition's pgvector index; ``ef_search`` overrides the store's for an HNSW
        index (raised to the number of rows fetched); an IVFFlat index reads the store's
        ``probes`` lists; ``exact`` scans the partition instead of using the index.
        """
        if self._memory is not None:
            if ef_search is not None:
                raise InputError("ef_search applies to a store opened with search='pgvector'; "
                                 "the in-memory search is exact")
            if self._memory.scan_in_sql(gallery, 1 if np.ndim(probes) < 2 else len(probes)):
                return self._sql_search(gallery, probes, k, model_id, True, None)  # cheaper than reading it
            return self._memory.search(gallery, probes, k, model_id, exact)
        return self._sql_search(gallery, probes, k, model_id, exact, ef_search)

    def _sql_search(self, gallery: str, probes: np.ndarray, k: int, model_id: str | None, exact: bool,
                    ef_search: int | None) -> list[list[Candidate]]:
        """The search in SQL: the partition's pgvector index, or with ``exact`` a scan of the partition."""
        ef = ef_search or self.hnsw.ef_search
        if not 1 <= ef <= EF_SEARCH_MAX:
            raise InputError(f"ef_search must be in [1, {EF_SEARCH_MAX}]")
        with self._conn() as conn, conn.transaction(), pg_errors("search"):
            g = conn.execute("SELECT id, model_id, dimension, set_config('hnsw.ef_search', %s, true), "
                             "set_config('ivfflat.probes', %s, true) FROM galleries WHERE name = %s",
                             (str(ef), str(self.hnsw.probes), check_name(gallery))).fetchone()
            if g is None:
                raise NotFoundError(f"no gallery named '{gallery}'", gallery=gallery)
            check_model((gallery, g[1]), model_id)
            p = check_probes(probes, g[2], k)
            t = vector_type(g[2])
            query = sql.SQL("SELECT t.id, t.subject_id, s.external_ref, t.score FROM (SELECT id, subject_id, "
                            "1 - (embedding::{t} <=> %s::{t}) AS score FROM {p} ORDER BY embedding::{t} <=> %s::{t} "
                            "LIMIT %s) t JOIN subjects s ON s.id = t.subject_id ORDER BY t.score DESC, t.id"
                            ).format(t=t, p=partition_name(g[0]))
            found: dict[int, tuple[int, str]] = {}

            def scores_of(m: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                if exact or m > EF_SEARCH_MAX:
                    conn.execute("SET LOCAL enable_indexscan = off")
                elif m > ef:
                    conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(m)))
                rows = conn.execute(query, (q, q, m)).fetchall()
                found.update((tid, (sid, ref)) for tid, sid, ref, _ in rows)
                return np.array([x[0] for x in rows], np.int64), np.array([x[3] for x in rows], np.float32)

            def subject_of(tids: np.ndarray) -> np.ndarray:
                return np.array([found[t][0] for t in tids.tolist()], np.int64)

            hits = [rank_subjects(lambda m, q=q: scores_of(m, q), subject_of, k) for q in p]
            refs = {sid: ref for sid, ref in found.values()}
        return [[Candidate(sid, refs[sid], score, i + 1, tid) for i, (sid, score, tid) in enumerate(h)]
                for h in hits]

    def index(self, gallery: str) -> GalleryIndex:
        """The in-memory index of ``gallery`` (``search="memory"``), loaded and in step with the database."""
        if self._memory is None:
            raise StoreError("this store searches through pgvector (search='pgvector'): it holds no gallery in memory")
        return self._memory.index(gallery)

    def warm(self, gallery: str) -> int:
        """Load ``gallery`` into this process's memory now, as its first search would; the templates
        held (0 with ``search="pgvector"``, which holds nothing: PostgreSQL's own cache warms itself)."""
        if self._memory is None:
            self.get_gallery(gallery)  # the same NotFound as a search
            return 0
        index = self._memory.index(gallery)
        index.prepare()
        return len(index)

    def sync(self) -> None:
        """Apply the change log to the galleries held in memory now (searches and a thread do it anyway)."""
        if self._memory is not None:
            self._memory.sync()


class _Reader:
    """``with store._read() as r``: a pooled connection wrapped in :class:`PgReads`."""

    def __init__(self, store: PostgresStore) -> None:
        self._cm = store._conn()

    def __enter__(self) -> PgReads:
        return PgReads(self._cm.__enter__())

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


def open_postgres(url: str, **options: Any) -> PostgresStore:
    """Open the PostgreSQL store at ``url``.

    Search: ``search="memory"`` (default; :mod:`.pg_memory`: exact, each process holds the
    galleries it searches, ``sync_seconds`` how often it follows the change log between
    searches, ``ann`` an :class:`~.memindex.AnnOptions`) or ``search="pgvector"`` (the
    partition's pgvector index).

    pgvector index options (:class:`~.postgres_tx.HnswParams`): ``index`` (``"none"``, the
    default with ``search="memory"``, ``"hnsw"``, the default with ``search="pgvector"``, or
    ``"ivfflat"``), HNSW's ``m``, ``ef_construction``, ``ef_search``, IVFFlat's ``lists`` and
    ``probes``, and ``build_memory``, ``bulk_rebuild_min`` for builds; a bad value is a
    :class:`~faceledger.errors.ConfigError`.
    """
    hnsw_keys = {"m", "ef_construction", "ef_search", "build_memory", "bulk_rebuild_min", "index", "lists", "probes"}
    index_options = {k: options.pop(k) for k in list(options) if k in hnsw_keys}
    index_options.setdefault("index", default_index(options.get("search", "memory")))
    hnsw = HnswParams(**index_options)
    try:
        return PostgresStore(url, hnsw=hnsw, **options)
    except TypeError as exc:
        raise StoreError(f"invalid PostgreSQL store option: {exc}") from None
