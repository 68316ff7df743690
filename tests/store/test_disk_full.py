"""A full disk, or a database connection lost mid-transaction, loses nothing (issue 14).

Consent, enrollment, identification and ledger-only writes run through the real engine (real
models, real photos) on a store that runs out of space:

* SQLite's own size limit (``PRAGMA max_page_count`` set to the file's size): SQLITE_FULL;
* a real full filesystem: a 24 MiB tmpfs mounted in a private mount namespace
  (``unshare``; root in CI), filled up by another file: ENOSPC from the kernel.

Every failure must be the typed :class:`~faceledger.errors.StorageFullError`; afterwards the
ledger chain verifies, every acknowledged operation has exactly its ``ok`` entry and effect (no
more, no less), SQLite's integrity check passes, and once space is freed every kind of write
works again. PostgreSQL: the session of a transaction is terminated (``pg_terminate_backend``)
between the operation's effect and its ledger entry; the typed
:class:`~faceledger.errors.StoreUnavailableError` follows, nothing of it stays, and the next
operation runs on a fresh connection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diskfull_work import KINDS, OPERATION, Workload, acknowledged_match, until_refused  # noqa: E402

MAX_ATTEMPTS = 60


def fill_until_refused(w: Workload, code: str) -> dict[str, list[str]]:
    """Every kind of write in turn until each is refused with ``code`` (space runs out as they succeed)."""
    outcomes = until_refused(w, MAX_ATTEMPTS)
    for kind, seen in outcomes.items():
        assert seen and seen[-1] == code and set(seen) <= {"ok", code}, (kind, seen)
    return outcomes


def test_sqlite_at_its_size_limit_refuses_cleanly_and_recovers(tmp_path, lfw, engine):
    w = Workload.open(f"sqlite://{tmp_path / 'fl.db'}", lfw, engine)
    try:
        w.setup(consents=MAX_ATTEMPTS)
        before = w.audit()
        db = w.engine.store._db              # fault injection: SQLite's own limit on the file's size
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        fill_until_refused(w, "storage_full")
        for kind in KINDS:                       # still full: refused again, nothing written
            assert w.attempt(kind) == "storage_full", kind
        full = w.audit()
        assert acknowledged_match(before, full, w.ok) == [], full
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

        db.execute("PRAGMA max_page_count = 1073741823")   # space freed
        for kind in KINDS:
            assert w.attempt(kind) == "ok", kind
        after = w.audit()
        assert acknowledged_match(before, after, w.ok) == [], after
        assert after["entries"] > full["entries"]
    finally:
        w.engine.close()


# -- a real full filesystem ----------------------------------------------------------------------------

CHILD = Path(__file__).resolve().parent / "disk_full_child.py"


def _in_tmpfs(mount: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the child inside a private mount namespace with a 24 MiB tmpfs at ``mount``."""
    script = (f'mount -t tmpfs -o size=24m,mode=0700 faceledger-full "{mount}" && '
              f'exec "{sys.executable}" "{CHILD}" "{mount}" "$@"')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    tries = (["unshare", "--mount", "--propagation", "private"], ["unshare", "--user", "--map-root-user", "--mount"])
    errors = []
    for prefix in tries:
        done = subprocess.run([*prefix, "sh", "-c", script, "child", *args], capture_output=True, text=True,
                              env=env, timeout=600)
        if "mount" in done.stderr and done.returncode == 32 or "unshare failed" in done.stderr:
            errors.append(done.stderr.strip())
            continue
        return done
    pytest.fail("cannot mount a private tmpfs (needs root, or unprivileged user namespaces): " + " | ".join(errors))


def test_a_full_filesystem_refuses_cleanly_and_recovers(tmp_path, lfw):
    assert shutil.which("unshare"), "unshare (util-linux) is needed to mount a private tmpfs"
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = _in_tmpfs(mount, str(lfw), "192")          # 192 KiB left: some writes fit, then the disk is full
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["disk_full_errors"] > 0, report
    for kind, seen in report["outcomes"].items():
        assert seen[-1] == "storage_full" and set(seen) <= {"ok", "storage_full"}, (kind, seen)
    assert report["problems_full"] == [] and report["problems_after"] == [], report
    assert report["integrity"] == "ok" and report["after_free"] == dict.fromkeys(KINDS, "ok"), report


# -- PostgreSQL: the connection dropped mid-transaction -------------------------------------------------

def test_a_postgres_session_killed_mid_transaction_loses_nothing(new_pg_url, lfw, engine, monkeypatch):
    import psycopg

    from faceledger.store.postgres_tx import PgTransaction

    url = new_pg_url()
    w = Workload.open(url, lfw, engine)
    try:
        w.setup(consents=8)
        before = w.audit()
        original = PgTransaction.append_ledger
        killed: list[int] = []

        def kill_then_append(self, fields):  # noqa: ANN001, ANN202 - the effect is written; the entry is next
            monkeypatch.setattr(PgTransaction, "append_ledger", original)   # once: the error entry may follow
            pid = self._conn.info.backend_pid
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)
            return original(self, fields)

        for kind in KINDS:
            monkeypatch.setattr(PgTransaction, "append_ledger", kill_then_append)
            code = w.attempt(kind)
            assert code == "store_unavailable", (kind, code)
            assert w.attempt(kind) == "ok", kind        # the pool hands out a fresh connection
        assert len(killed) >= len(KINDS)
        after = w.audit()
        assert acknowledged_match(before, after, w.ok) == [], after
        # each failure is on the ledger too: the engine wrote its error entry on a fresh connection
        grown = {op: n - before["error_entries"].get(op, 0) for op, n in after["error_entries"].items()}
        assert grown == dict.fromkeys(OPERATION.values(), 1), grown
    finally:
        w.engine.close()
