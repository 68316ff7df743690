"""The PostgreSQL store's default search: the embedded store's int8 scan in this process, fed by PostgreSQL.

pgvector's indexes cannot reach exact search's answers at a million templates in 20 ms
(HNSW stops near 97% of them, IVFFlat needs 0.3 s for 99%; docs/benchmarks.md), and
PostgreSQL's own scan reads about 0.4 µs a row. So each process that searches keeps the
galleries it searches in memory, as the SQLite store does (:class:`~.memindex.GalleryIndex`:
int8 codes in two planes, every row bounded, the best re-scored in float32: the exact
top-k), and PostgreSQL stays the one copy of record:

* A gallery is read into memory once this process's searches of it have cost about as much in
  PostgreSQL's exact scans as the read would (:meth:`MemorySearch.scan_in_sql`: a process
  that searches once never reads it), or by :meth:`MemorySearch.index` (the service reads
  every gallery at start-up), with one binary ``COPY`` of its partition (id, subject,
  vector), in the search's snapshot.
* Every change to ``templates`` is written to ``template_changes`` by a row trigger
  (:mod:`.postgres_schema`): the template's id only, numbered in commit order. Before
  each search, the process reads the changes numbered after the last it applied (one
  query: none, in the steady state) and, for each gallery it holds, takes out every
  changed id and puts back those still present, read in the same snapshot; a gallery
  replaced or dropped (a row without a template id), or changed too much, is read again.
* The float32 rows of the re-score are read from PostgreSQL in the same snapshot, so a
  search sees one consistent state of the gallery, whatever other processes write.
* An erased template leaves the memory of every process at that process's next search,
  or within ``sync_seconds`` (a thread applies the log meanwhile): its row of int8 codes
  is overwritten, not just forgotten (:meth:`~.memindex.GalleryIndex.remove`).

Changes older than :data:`KEEP_LOG` are pruned by writers; a process that has not
applied them by then reads its galleries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress

import numpy as np
import psycopg
from psycopg import sql

from faceledger.errors import NotFoundError, StoreError

from ._common import check_model, check_name, check_probes
from .base import Candidate
from .memindex import AnnOptions, GalleryIndex
from .postgres_schema import partition_name
from .postgres_tx import pg_errors

__all__ = ["KEEP_LOG_SQL", "SQL_SCANS_PER_READ", "MemorySearch", "prune_changes"]

log = logging.getLogger("faceledger.store")

KEEP_LOG_SQL = "interval '1 day'"  # how long the change log keeps a change
BATCH = 20_000  # rows read from a COPY before they are added to the index
#: Reading a gallery costs about this many PostgreSQL exact scans of its partition (13-20 measured at a
#: million: bench/warm_start.py): that many probes of a gallery are scanned in SQL before it is read.
SQL_SCANS_PER_READ = 12
RELOAD_MIN = 10_000  # more changes than this (and than a quarter of the gallery): read the gallery again
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


class MemorySearch:
    """The galleries one PostgreSQL store searches in memory, kept in step with the change log; thread-safe.

    ``connect()``: a context manager giving a pooled autocommit connection. ``sync_seconds``:
    how often a background thread applies the log while no search does (0: only searches do).
    """

    def __init__(self, connect: Callable[[], AbstractContextManager[psycopg.Connection]], ann: AnnOptions,
                 sync_seconds: float = 30.0, float32_up_to: int = 100_000) -> None:
        self._connect = connect
        self._ann = ann
        self._float32_up_to = float32_up_to
        self._lock = threading.RLock()
        self._indexes: dict[int, GalleryIndex] = {}
        self._cursor = 0  # the last change applied to every index held
        self._conn: psycopg.Connection | None = None  # the snapshot in use (under the lock)
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._scanned: dict[str, int] = {}  # probes answered by SQL scans per gallery name; -1: read
        self._scanned_lock = threading.Lock()
        if sync_seconds > 0:
            self._follower = threading.Thread(target=self._follow, args=(sync_seconds,), daemon=True,
                                              name="faceledger-pg-follow")
            self._follower.start()

    def close(self) -> None:
        self._stop.set()
        if self._follower is not None and self._follower is not threading.current_thread():
            self._follower.join()
        with self._lock:
            self._forget(list(self._indexes))

    @property
    def galleries_held(self) -> int:
        return len(self._indexes)

    # -- one snapshot --------------------------------------------------------------------
    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection]:
        """A read-only repeatable-read transaction, under the lock (so snapshots only move forward)."""
        with self._connect() as conn, self._lock:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._conn = conn
            try:
                yield conn
            except BaseException:
                with suppress(psycopg.Error):  # a lost connection is discarded by the pool
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._conn = None

    def search(self, gallery: str, probes: np.ndarray, k: int, model_id: str | None, exact: bool
               ) -> list[list[Candidate]]:
        with pg_errors("search"), self._snapshot() as conn:
            index = self._synced(conn, gallery, model_id)
            p = check_probes(probes, index.dimension, k)
            hits = index.search(p, k, exact=exact)
            sids = sorted({sid for h in hits for sid, _, _ in h})
            refs = dict(conn.execute("SELECT id, external_ref FROM subjects WHERE id = ANY(%s)", (sids,)).fetchall())
        return [[Candidate(sid, refs[sid], score, i + 1, tid) for i, (sid, score, tid) in enumerate(h)]
                for h in hits]

    def index(self, gallery: str) -> GalleryIndex:
        """The in-memory index of ``gallery``, loaded and in step with the database now."""
        with pg_errors("load the gallery"), self._snapshot() as conn:
            index = self._synced(conn, gallery, None)
        with self._scanned_lock:
            self._scanned[gallery] = -1
        return index

    def scan_in_sql(self, gallery: str, probes: int) -> bool:
        """Whether to answer this search of ``gallery`` (``probes`` probe rows) by PostgreSQL's exact scan
        instead of reading the gallery into memory (a ski rental: rent until renting has cost the price).

        Reading a gallery costs about as much as :data:`SQL_SCANS_PER_READ` scans of its partition (at
        a million: 5 s against 0.3-0.4 s a probe). So the first searches of a gallery in this process
        are scans, until their probes would pass that many; then the gallery is read. A process that
        searches once (a CLI command) never pays the read; one that keeps searching pays at most about
        twice what reading at once would have cost. A gallery read by :meth:`index` is never scanned.
        """
        with self._scanned_lock:
            spent = self._scanned.get(gallery, 0)
            if spent < 0 or spent + probes > SQL_SCANS_PER_READ:
                self._scanned[gallery] = -1  # read (or being read): searched in memory from now on
                return False
            self._scanned[gallery] = spent + probes
            return True

    def sync(self) -> None:
        """Apply the change log to every gallery held now (searches do it themselves)."""
        with pg_errors("follow the change log"), self._snapshot() as conn:
            floor, newest = conn.execute(
                "SELECT f.seq, (SELECT coalesce(max(seq), 0) FROM template_changes) FROM template_changes_floor f"
            ).fetchone()  # type: ignore[misc]
            self._apply_changes(conn, floor, newest)

    def _synced(self, conn: psycopg.Connection, gallery: str, model_id: str | None) -> GalleryIndex:
        """The gallery's index at this snapshot (one query when nothing changed)."""
        g = conn.execute("SELECT g.id, g.model_id, g.dimension, f.seq, (SELECT coalesce(max(seq), 0) FROM "
                         "template_changes) FROM galleries g CROSS JOIN template_changes_floor f WHERE g.name = %s",
                         (check_name(gallery),)).fetchone()
        if g is None:
            raise NotFoundError(f"no gallery named '{gallery}'", gallery=gallery)
        check_model((gallery, g[1]), model_id)
        self._apply_changes(conn, g[3], g[4])
        gid, dimension = int(g[0]), int(g[2])
        index = self._indexes.get(gid)
        if index is None or index.dimension != dimension:
            index = self._indexes[gid] = self._load(conn, gid, dimension)
        return index

    # -- following the log ---------------------------------------------------------------------
    def _apply_changes(self, conn: psycopg.Connection, floor: int, newest: int) -> None:
        """Bring every index held to this snapshot (``floor``: the log's pruned past; ``newest``: its last change).

        An index that cannot be brought there is dropped, and read again by its next search.
        """
        if not self._indexes:  # nothing to bring up to date: start from the newest change
            self._cursor = newest
            return
        if floor > self._cursor:  # changes this process has not applied were pruned
            log.warning("the change log was pruned past this process's last change: reading galleries again")
            self._forget(list(self._indexes))
            self._cursor = newest
            return
        if newest <= self._cursor:
            return
        rows = conn.execute("SELECT gallery_id, count(*), bool_or(template_id IS NULL) FROM template_changes "
                            "WHERE seq > %s AND seq <= %s GROUP BY gallery_id", (self._cursor, newest)).fetchall()
        for gid, count, reset in rows:
            index = self._indexes.get(gid)
            if index is None:
                continue
            if reset or count > max(RELOAD_MIN, len(index) // 4):
                self._forget([gid])
                continue
            ids = [r[0] for r in conn.execute("SELECT DISTINCT template_id FROM template_changes "
                                               "WHERE seq > %s AND seq <= %s AND gallery_id = %s",
                                               (self._cursor, newest, gid))]
            present = fetch_rows(conn, gid, ids, index.dimension)
            try:
                index.remove(np.array(ids, np.int64))
                index.add(*present)
            except BaseException:
                self._forget([gid])
                raise
        self._cursor = newest

    def _forget(self, gids: list[int]) -> None:
        for gid in gids:
            index = self._indexes.pop(gid, None)
            if index is not None:
                index.clear()

    def _load(self, conn: psycopg.Connection, gid: int, dimension: int) -> GalleryIndex:
        index = GalleryIndex(dimension, self._ann, lock=self._lock, float32_up_to=self._float32_up_to,
                             exact=lambda tids: self._exact(gid, tids, dimension))
        for tids, sids, vecs in copy_rows(conn, gid, dimension):
            index.add(tids, sids, vecs)
        return index

    def _exact(self, gid: int, tids: np.ndarray, dimension: int) -> np.ndarray:
        """float32 rows of ``tids`` in that order, from the snapshot of the search in progress."""
        if self._conn is None:
            raise StoreError("the in-memory index read the database outside a search")
        got, _, vecs = fetch_rows(self._conn, gid, tids.tolist(), dimension)
        where = {t: i for i, t in enumerate(got.tolist())}
        try:
            return vecs[[where[t] for t in tids.tolist()]]
        except KeyError:
            raise StoreError("a template held in memory is missing from the database's snapshot "
                             "(the change log was bypassed?): search again") from None

    def _follow(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            if not self._indexes:
                continue
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - a lost connection must not end the thread; searches sync too
                log.warning("could not follow the change log: %s", exc)


def fetch_rows(conn: psycopg.Connection, gid: int, tids: list[int], dimension: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Template ids, subject ids and vectors of those of ``tids`` present in the gallery's partition.

    The vectors come as pgvector's binary form (``vector_send``: dimension, a spare int16,
    big-endian float32s), parsed in one step.
    """
    if not tids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dimension), np.float32)
    rows = conn.execute(sql.SQL("SELECT id, subject_id, vector_send(embedding) FROM {} WHERE id = ANY(%s)").format(
        partition_name(gid)), (tids,), binary=True).fetchall()
    width = 4 + 4 * dimension
    bad = next((r for r in rows if len(r[2]) != width or int.from_bytes(r[2][:2], "big") != dimension), None)
    if bad is not None:
        raise StoreError(f"template {bad[0]} has {int.from_bytes(bad[2][:2], 'big')} dimensions, "
                         f"not the gallery's {dimension}")
    vecs = np.frombuffer(b"".join(r[2] for r in rows), ">f4").reshape(len(rows), 1 + dimension)[:, 1:]
    return (np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64),
            vecs.astype(np.float32))


def row_dtype(dimension: int) -> np.dtype:
    """One row of ``COPY (SELECT id, subject_id, embedding ...) TO STDOUT (FORMAT BINARY)``."""
    return np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("sid_len", ">i4"), ("sid", ">i8"),
                     ("vec_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dimension,))])


def copy_rows(conn: psycopg.Connection, gid: int, dimension: int
              ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The partition's (template ids, subject ids, float32 vectors), ``BATCH`` rows at a time, by binary COPY."""
    dtype = row_dtype(dimension)
    query = sql.SQL("COPY (SELECT id, subject_id, embedding FROM {}) TO STDOUT (FORMAT BINARY)").format(
        partition_name(gid))
    buf, header_done = bytearray(), False
    with conn.cursor().copy(query) as copy:
        for chunk in copy:
            buf += chunk
            if not header_done and len(buf) >= 19:
                if bytes(buf[:11]) != COPY_SIGNATURE:
                    raise StoreError("PostgreSQL's binary COPY has an unknown header")
                extension = int.from_bytes(buf[15:19], "big")
                del buf[:19 + extension]
                header_done = True
            if header_done and len(buf) >= BATCH * dtype.itemsize:
                yield _parse(buf, dtype, dimension)
    if header_done:
        if bytes(buf[-2:]) != b"\xff\xff":
            raise StoreError("PostgreSQL's binary COPY ended without its trailer")
        del buf[-2:]
        if buf:
            yield _parse(buf, dtype, dimension)
        if buf:
            raise StoreError(f"a template of the gallery does not have {dimension} dimensions "
                             "(the binary COPY of its partition ends in the middle of a row)")


def _parse(buf: bytearray, dtype: np.dtype, dimension: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse (and cut from ``buf``) its whole rows; a row of another shape is a :class:`StoreError`."""
    n = len(buf) // dtype.itemsize
    rows = np.frombuffer(bytes(buf[:n * dtype.itemsize]), dtype)
    del buf[:n * dtype.itemsize]
    if n and not (np.all(rows["fields"] == 3) and np.all(rows["id_len"] == 8) and np.all(rows["sid_len"] == 8)
                  and np.all(rows["vec_len"] == 4 + 4 * dimension) and np.all(rows["dim"] == dimension)):
        raise StoreError(f"a template of the gallery does not have {dimension} dimensions")
    return rows["id"].astype(np.int64), rows["sid"].astype(np.int64), rows["vec"].astype(np.float32)


def prune_changes(conn: psycopg.Connection) -> int:
    """Delete changes older than :data:`KEEP_LOG_SQL` and raise the floor past them; how many went."""
    row = conn.execute(f"WITH gone AS (DELETE FROM template_changes WHERE at < now() - {KEEP_LOG_SQL} "
                       "RETURNING seq) UPDATE template_changes_floor SET seq = greatest(seq, "
                       "(SELECT coalesce(max(seq), 0) FROM gone)) RETURNING (SELECT count(*) FROM gone)").fetchone()
    return int(row[0]) if row else 0
