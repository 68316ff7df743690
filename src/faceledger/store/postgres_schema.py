"""Schema migrations of the PostgreSQL store (numbered, recorded, one transaction each).

Templates live in a table partitioned by gallery: each gallery gets its own
partition ``templates_g<id>`` with its own HNSW index on
``embedding::vector(<dimension>)`` (cosine), created with the gallery (or, with the store's
``index="ivfflat"``, an IVFFlat index built by a large bulk import, once there are rows to train on). A search
reads only that partition, so a small gallery in a big table still gets its k
results (a single index filtered by gallery would return at most ``ef_search``
rows *before* filtering, often none of them from a small gallery).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from faceledger.errors import StoreError

__all__ = ["MIGRATIONS", "WRITER_LOCK", "create_hnsw", "create_ivfflat", "drop_indexes", "drop_partition",
           "make_partition", "migrate", "partition_index"]

MIGRATION_LOCK = 0x46_4C_4D_49  # advisory lock key serialising migrations ("FLMI")
MIGRATIONS: dict[int, tuple[str, Callable[[psycopg.Connection], None]]] = {}


def migration(version: int, name: str) -> Callable[[Callable[[psycopg.Connection], None]], Callable]:
    def register(fn: Callable[[psycopg.Connection], None]) -> Callable:
        if version in MIGRATIONS:
            raise RuntimeError(f"duplicate migration {version}")
        MIGRATIONS[version] = (name, fn)
        return fn
    return register


INITIAL = """
CREATE TABLE galleries (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    model_id text NOT NULL,
    dimension integer NOT NULL,
    retention_days integer,
    thresholds jsonb NOT NULL,
    operating_point text,
    keep_photos boolean NOT NULL,
    quality_gate jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE subjects (
    id bigserial PRIMARY KEY,
    gallery_id bigint NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
    external_ref text NOT NULL,
    display_name text,
    created_at timestamptz NOT NULL,
    UNIQUE (gallery_id, external_ref)
);
CREATE INDEX subjects_created ON subjects (gallery_id, created_at);
CREATE SEQUENCE templates_id_seq;
CREATE TABLE templates (
    id bigint NOT NULL DEFAULT nextval('templates_id_seq'),
    gallery_id bigint NOT NULL,
    subject_id bigint NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    embedding vector NOT NULL,
    quality jsonb NOT NULL,
    source_sha256 text NOT NULL,
    photo bytea,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (gallery_id, id),
    UNIQUE (gallery_id, subject_id, source_sha256)
) PARTITION BY LIST (gallery_id);
CREATE INDEX templates_subject ON templates (subject_id);
CREATE INDEX templates_id ON templates (id);
CREATE TABLE records (
    kind text NOT NULL,
    record_id text NOT NULL,
    gallery text,
    subject_id bigint,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (kind, record_id)
);
CREATE INDEX records_subject ON records (subject_id);
CREATE INDEX records_gallery ON records (kind, gallery);
CREATE TABLE ledger (
    seq bigint PRIMARY KEY,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    fields text NOT NULL
)
"""


@migration(1, "galleries, subjects, partitioned templates with pgvector, records, ledger")
def _initial(conn: psycopg.Connection) -> None:
    for statement in INITIAL.split(";\n"):
        if statement.strip():
            conn.execute(statement)  # type: ignore[arg-type]


@migration(2, "enrolled face crops; review evidence")
def _evidence(conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE templates ADD COLUMN crop bytea")
    conn.execute("CREATE TABLE evidence (id text PRIMARY KEY, data bytea NOT NULL, created_at timestamptz NOT NULL)")


WRITER_LOCK = 0x46_4C_57_52  # advisory lock key serialising writers ("FLWR"); the change log's trigger takes it too

CHANGE_LOG = (
    """CREATE TABLE template_changes (
        seq bigserial PRIMARY KEY,
        gallery_id bigint NOT NULL,
        template_id bigint,
        at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX template_changes_at ON template_changes (at)",
    "CREATE TABLE template_changes_floor (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL)",
    "INSERT INTO template_changes_floor VALUES (true, 0)",
    f"""CREATE FUNCTION faceledger_template_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock({WRITER_LOCK});
        IF TG_OP = 'TRUNCATE' THEN
            INSERT INTO template_changes (gallery_id) SELECT id FROM galleries;
            RETURN NULL;
        END IF;
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            INSERT INTO template_changes (gallery_id, template_id) VALUES (OLD.gallery_id, OLD.id);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO template_changes (gallery_id, template_id) VALUES (NEW.gallery_id, NEW.id);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER templates_changed AFTER INSERT OR UPDATE OR DELETE ON templates
        FOR EACH ROW EXECUTE FUNCTION faceledger_template_changed()""",
    """CREATE TRIGGER templates_truncated AFTER TRUNCATE ON templates
        FOR EACH STATEMENT EXECUTE FUNCTION faceledger_template_changed()""",
)


@migration(3, "template change log: what in-memory search indexes follow")
def _change_log(conn: psycopg.Connection) -> None:
    """Every insert, update and deletion of a template, in commit order; ``template_id`` NULL: start again.

    A row trigger (cloned onto every partition, present and future) writes each change, after taking
    the writers' lock, so ``seq`` grows in commit order whoever writes; the log holds ids only.
    """
    for statement in CHANGE_LOG:
        conn.execute(statement)  # type: ignore[arg-type]


def partition_name(gallery_id: int) -> sql.Identifier:
    return sql.Identifier(f"templates_g{int(gallery_id)}")


def partition_index(gallery_id: int, kind: str = "hnsw") -> sql.Identifier:
    return sql.Identifier(f"templates_g{int(gallery_id)}_{kind}")


def vector_type(dimension: int) -> sql.Composable:
    return sql.SQL("vector({})").format(sql.Literal(int(dimension)))


def create_hnsw(conn: psycopg.Connection, gallery_id: int, dimension: int, m: int, ef_construction: int) -> None:
    """The partition's HNSW cosine index on ``embedding::vector(dimension)``."""
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING hnsw ((embedding::{}) vector_cosine_ops) "
                         "WITH (m = {}, ef_construction = {})").format(
        partition_index(gallery_id), partition_name(gallery_id), vector_type(dimension),
        sql.Literal(int(m)), sql.Literal(int(ef_construction))))


def create_ivfflat(conn: psycopg.Connection, gallery_id: int, dimension: int, lists: int) -> None:
    """The partition's IVFFlat cosine index on ``embedding::vector(dimension)``, trained on its rows."""
    conn.execute(sql.SQL("CREATE INDEX {} ON {} USING ivfflat ((embedding::{}) vector_cosine_ops) "
                         "WITH (lists = {})").format(
        partition_index(gallery_id, "ivfflat"), partition_name(gallery_id), vector_type(dimension),
        sql.Literal(int(lists))))


def drop_indexes(conn: psycopg.Connection, gallery_id: int) -> None:
    """Drop the partition's vector index, whichever kind it has (before a bulk import rebuilds it)."""
    for kind in ("hnsw", "ivfflat"):
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(partition_index(gallery_id, kind)))


def make_partition(conn: psycopg.Connection, gallery_id: int, dimension: int) -> None:
    """The gallery's empty partition of ``templates`` (its vector index is made by the caller)."""
    conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF templates FOR VALUES IN ({})").format(
        partition_name(gallery_id), sql.Literal(int(gallery_id))))


def drop_partition(conn: psycopg.Connection, gallery_id: int) -> None:
    """Drop the gallery's partition, and tell the indexes that follow the change log to start again."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(partition_name(gallery_id)))
    conn.execute("INSERT INTO template_changes (gallery_id) VALUES (%s)", (int(gallery_id),))


def migrate(conn: psycopg.Connection) -> int:
    """Create the ``vector`` extension if needed and apply pending migrations; returns the version."""
    latest = max(MIGRATIONS)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                conn.execute("CREATE EXTENSION vector")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                         "(version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)")
            version = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]  # type: ignore[index]
            if version > latest:
                raise StoreError(f"this database has schema version {version}, newer than this FaceLedger "
                                 f"understands ({latest}): upgrade FaceLedger")
            for v in range(version + 1, latest + 1):
                name, fn = MIGRATIONS[v]
                fn(conn)
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, now())", (v, name))
            return latest
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreError(f"cannot set up the schema: {exc.diag.message_primary}. Ask the database owner to run "
                         "CREATE EXTENSION vector (pgvector) and grant this user CREATE on the schema") from None
    except psycopg.errors.FeatureNotSupported as exc:
        raise StoreError(f"cannot set up the schema: {exc}") from None
    except psycopg.errors.UndefinedFile as exc:
        raise StoreError(f"the pgvector extension is not installed on the server: {exc}") from None
