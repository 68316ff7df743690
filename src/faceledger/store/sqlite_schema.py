"""Schema migrations of the SQLite store: numbered, applied in order, recorded in a table.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the
row that records it, so a crash leaves either the old or the new schema. A
database written by a newer FaceLedger (an unknown version) is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from faceledger.errors import StoreError

from ._common import to_iso, utc_now

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: dict[int, tuple[str, Callable[[sqlite3.Connection], None]]] = {}


def migration(version: int, name: str) -> Callable[[Callable[[sqlite3.Connection], None]], Callable]:
    """Register ``fn`` as migration ``version``."""
    def register(fn: Callable[[sqlite3.Connection], None]) -> Callable:
        if version in MIGRATIONS:
            raise RuntimeError(f"duplicate migration {version}")
        MIGRATIONS[version] = (name, fn)
        return fn
    return register


@migration(1, "galleries, subjects, encrypted templates, records, ledger")
def _initial(db: sqlite3.Connection) -> None:
    for statement in INITIAL.split(";\n"):
        if statement.strip():
            db.execute(statement)


INITIAL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE galleries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    retention_days INTEGER,
    thresholds TEXT NOT NULL,
    operating_point TEXT,
    keep_photos INTEGER NOT NULL,
    quality_gate TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gallery_id INTEGER NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
    external_ref TEXT NOT NULL,
    display_name TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (gallery_id, external_ref)
);
CREATE INDEX subjects_created ON subjects (gallery_id, created_at);
CREATE TABLE subject_keys (
    subject_id INTEGER PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    wrapped BLOB NOT NULL
);
CREATE TABLE templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    gallery_id INTEGER NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    quality TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    photo BLOB,
    created_at TEXT NOT NULL,
    UNIQUE (subject_id, source_sha256)
);
CREATE INDEX templates_gallery ON templates (gallery_id);
CREATE TABLE records (
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    gallery TEXT,
    subject_id INTEGER,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, record_id)
);
CREATE INDEX records_subject ON records (subject_id);
CREATE INDEX records_gallery ON records (kind, gallery);
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    fields TEXT NOT NULL
)
"""


@migration(2, "enrolled face crops; review evidence under keys of its own")
def _evidence(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE templates ADD COLUMN crop BLOB")
    db.execute("CREATE TABLE evidence (id TEXT PRIMARY KEY, wrapped BLOB NOT NULL, data BLOB NOT NULL, "
               "created_at TEXT NOT NULL)")


def current_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
               "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite3.Connection) -> int:
    """Apply every pending migration; returns the schema version. ``db`` is in autocommit mode."""
    latest = max(MIGRATIONS)
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = current_version(db)
            if version > latest:
                raise StoreError(f"this database has schema version {version}, newer than this "
                                 f"FaceLedger understands ({latest}): upgrade FaceLedger")
            if version == latest:
                db.execute("COMMIT")
                return version
            name, fn = MIGRATIONS[version + 1]
            fn(db)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version + 1, name, to_iso(utc_now())))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
