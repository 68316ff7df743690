"""Persistent galleries: one storage contract, two backends.

>>> from faceledger.store import open_store, GallerySettings, NewTemplate
>>> store = open_store("sqlite:///var/lib/faceledger/faceledger.db")   # or "postgresql://..."
>>> with store.transaction() as tx:
...     tx.create_gallery("staff", GallerySettings(model_id="sface-2021dec-int8bq", dimension=128))
...     alice = tx.add_subject("staff", "emp-0042", "Alice")
...     tx.add_template(alice.id, NewTemplate(vector, "sface-2021dec-int8bq", sha256_of_photo))
...     tx.append_ledger({"op": "enroll", "subject_id": alice.id, ...})
>>> store.search("staff", probe_vectors, k=5)        # list[list[Candidate]], one list per probe

URLs:

* ``sqlite:///absolute/path/file.db`` (the URL's path is used as is), ``sqlite:relative/file.db``,
  or ``sqlite://`` for ``<data dir>/faceledger.db``; the data directory is
  ``$FACELEDGER_DATA_DIR``, else ``$XDG_DATA_HOME/faceledger``, else
  ``~/.local/share/faceledger``. Query parameters: ``key_file=/path/to/kek``.
* ``postgresql://user:password@host:5432/dbname?sslmode=verify-full`` (any libpq
  connection URI; needs ``pip install 'faceledger[postgres]'`` and the ``vector``
  extension on the server). FaceLedger's own query parameters, taken out before the URL
  reaches libpq: ``search=memory|pgvector`` and ``sync_seconds=N`` (see :func:`open_store`),
  so a command or the service can choose them with ``--store`` / ``FACELEDGER_STORE``.

Backends are imported only when a URL of theirs is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from faceledger import config
from faceledger.errors import BackendUnavailableError, ConfigError, InputError

from .base import (
    BulkSubject,
    Candidate,
    Gallery,
    GallerySettings,
    GalleryStats,
    LedgerHead,
    LedgerRow,
    NewTemplate,
    Record,
    Store,
    StoredTemplate,
    Subject,
    Transaction,
)
from .memindex import AnnOptions

__all__ = [
    "AnnOptions",
    "BulkSubject",
    "Candidate",
    "Gallery",
    "GallerySettings",
    "GalleryStats",
    "LedgerHead",
    "LedgerRow",
    "NewTemplate",
    "Record",
    "Store",
    "StoredTemplate",
    "Subject",
    "Transaction",
    "data_dir",
    "default_url",
    "open_store",
    "redact_url",
]


def data_dir() -> Path:
    """Where FaceLedger keeps its default database and key file (:func:`faceledger.config.data_dir`)."""
    return config.data_dir()


def default_url() -> str:
    """``sqlite:///<data dir>/faceledger.db`` (:func:`faceledger.config.default_store_url`)."""
    return config.default_store_url()


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log and to show)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


#: The file and query options of a ``sqlite:`` URL (:func:`faceledger.config.sqlite_path`).
sqlite_path = config.sqlite_path


def open_store(url: str | None = None, **options: Any) -> Store:
    """Open the store at ``url`` (default :func:`default_url`), creating its schema if needed.

    SQLite options: ``key`` (32 bytes), ``key_file``, ``ann`` (:class:`AnnOptions`),
    ``busy_timeout_s``. PostgreSQL options: ``search`` (``"memory"``, the default: exact, the
    gallery held in this process and kept in step through a change log; or ``"pgvector"``),
    ``sync_seconds``, ``ann`` (with ``search="memory"``), ``min_size``/``max_size`` (connection
    pool), ``index`` (``"none"``, ``"hnsw"`` or ``"ivfflat"``), ``ef_search``, ``m``,
    ``ef_construction`` (HNSW), ``lists``, ``probes`` (IVFFlat), ``build_memory``,
    ``bulk_rebuild_min``.
    """
    url = url or default_url()
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import open_sqlite

        path, query = sqlite_path(url)
        if "key_file" in query:
            options.setdefault("key_file", query.pop("key_file"))
        if query:
            raise InputError(f"unknown SQLite URL option(s): {', '.join(sorted(query))}")
        return open_sqlite(path, **options)
    if scheme in ("postgresql", "postgres"):
        url = _take_pg_options(url, options)
        try:
            from .postgres import open_postgres
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the PostgreSQL store needs psycopg 3, psycopg_pool and pgvector ({exc.name} is missing): "
                "pip install 'faceledger[postgres]'") from None
        return open_postgres(url, **options)
    raise InputError(f"unsupported store URL {redact_url(url)!r}: use sqlite:///path/file.db or postgresql://...")


PG_URL_OPTIONS = ("search", "sync_seconds")


def _take_pg_options(url: str, options: dict[str, Any]) -> str:
    """``url`` without FaceLedger's own query parameters, which go to ``options`` (given options win)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = [(k, v) for k, v in query if k in PG_URL_OPTIONS]
    if not ours:
        return url
    for key, value in ours:
        if key == "sync_seconds":
            try:
                options.setdefault(key, float(value))
            except ValueError:
                raise ConfigError(f"sync_seconds in the store URL must be a number, not {value!r}") from None
        else:
            options.setdefault(key, value)
    return parts._replace(query=urlencode([(k, v) for k, v in query if k not in PG_URL_OPTIONS])).geturl()
