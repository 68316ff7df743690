"""The reads both SQL stores share: galleries, subjects, records and the ledger head.

The queries are the same on SQLite and PostgreSQL except for the parameter mark
(``?`` or ``%s``), the gallery columns and how a row's values are decoded; a backend
subclasses :class:`SqlReads` and supplies those, plus ``_one`` and ``_all``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from faceledger.core.chain import GENESIS
from faceledger.errors import NotFoundError

from ._common import check_name
from .base import Gallery, LedgerHead, Record, Subject

__all__ = ["RECORD_COLS", "SUBJECT_SQL", "TEMPLATE_COLS", "SqlReads"]

SUBJECT_SQL = ("SELECT s.id, g.name, s.external_ref, s.display_name, s.created_at, "
               "(SELECT count(*) FROM templates t WHERE t.subject_id = s.id) "
               "FROM subjects s JOIN galleries g ON g.id = s.gallery_id ")
TEMPLATE_COLS = "id, subject_id, quality, source_sha256, created_at, photo IS NOT NULL"
RECORD_COLS = "kind, record_id, data, gallery, subject_id, created_at, updated_at"


class SqlReads:
    """Queries over one connection; callers hold the store's lock (SQLite) or own the connection."""

    MARK: ClassVar[str]
    GALLERY_COLS: ClassVar[str]
    _gallery_of: ClassVar[Callable[[tuple], Gallery]]
    _subject_of: ClassVar[Callable[[tuple], Subject]]
    _record_of: ClassVar[Callable[[tuple], Record]]

    def _one(self, query: Any, params: Any = ()) -> tuple | None:
        raise NotImplementedError

    def _all(self, query: Any, params: Any = ()) -> list[tuple]:
        raise NotImplementedError

    def _gallery_row(self, name: str) -> tuple:
        row = self._one(f"SELECT {self.GALLERY_COLS} FROM galleries WHERE name = {self.MARK}", (check_name(name),))
        if row is None:
            raise NotFoundError(f"no gallery named '{name}'", gallery=name)
        return row

    def get_gallery(self, name: str) -> Gallery:
        return self._gallery_of(self._gallery_row(name))

    def get_subject(self, subject_id: int) -> Subject:
        row = self._one(SUBJECT_SQL + f"WHERE s.id = {self.MARK}", (int(subject_id),))
        if row is None:
            raise NotFoundError(f"no subject with id {subject_id}", subject_id=subject_id)
        return self._subject_of(row)

    def find_subject(self, gallery: str, external_ref: str) -> Subject:
        m = self.MARK
        row = self._one(SUBJECT_SQL + f"WHERE g.name = {m} AND s.external_ref = {m}", (gallery, external_ref))
        if row is None:
            self._gallery_row(gallery)
            raise NotFoundError(f"no subject '{external_ref}' in gallery '{gallery}'",
                                gallery=gallery, external_ref=external_ref)
        return self._subject_of(row)

    def get_record(self, kind: str, record_id: str) -> Record:
        m = self.MARK
        row = self._one(f"SELECT {RECORD_COLS} FROM records WHERE kind = {m} AND record_id = {m}", (kind, record_id))
        if row is None:
            raise NotFoundError(f"no {kind} record '{record_id}'", kind=kind, record_id=record_id)
        return self._record_of(row)

    def list_records(self, kind: str, *, gallery: str | None = None, subject_id: int | None = None) -> list[Record]:
        m = self.MARK
        query, params = f"SELECT {RECORD_COLS} FROM records WHERE kind = {m}", [kind]
        if gallery is not None:
            query, params = query + f" AND gallery = {m}", [*params, gallery]
        if subject_id is not None:
            query, params = query + f" AND subject_id = {m}", [*params, int(subject_id)]
        return [self._record_of(r) for r in self._all(query + " ORDER BY created_at, record_id", tuple(params))]

    def ledger_head(self) -> LedgerHead:
        row = self._one("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        return LedgerHead(0, GENESIS) if row is None else LedgerHead(row[0], row[1])
