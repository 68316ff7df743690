"""Templates for many photos, with an on-disk cache so that reruns are fast.

One template per photo: the face nearest the image centre (``face="center"``, the
subject of a portrait). A photo where no face is found, or that cannot be decoded,
is never dropped: it is recorded as a failure with the error's code, its row in
the result is all zeros and ``ok`` is False, so protocols can score its pairs as
non-matches and report them.

The cache is off unless asked for (``faceledger evaluate --cache``): templates are
biometric data, and evaluation photos are nobody's enrolled subjects, so no consent
record or erasure request reaches them. When used, it is one SQLite file
(``templates.sqlite``) in a cache folder (default ``$FACELEDGER_CACHE`` or
``~/.cache/faceledger``, created ``0700``; the files are ``0600``), and every vector is
AES-256-GCM encrypted under the key in ``templates.key`` beside it, bound to its row.
Deleting the folder (or just the key file) erases the cache. A row is keyed by the photo's
SHA-256, the model id and a *variant* string naming the detector, the face choice and
the detection options, so a change to any of them never reuses stale templates.
Failures are cached too (they are as deterministic as templates). The key cannot
see a change in the pipeline's *code* (alignment, preprocessing): :func:`check_cache`
recomputes a few photos and refuses a cache whose entries no longer match.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceledger.errors import ConfigError, InputError
from faceledger.recognizer import FaceChoice, Recognizer

__all__ = [
    "PhotoTemplates",
    "TemplateCache",
    "check_cache",
    "compute_templates",
    "default_cache_dir",
    "variant_of",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    sha256   TEXT NOT NULL,
    model_id TEXT NOT NULL,
    variant  TEXT NOT NULL,
    vector   BLOB,            -- AES-GCM(nonce || float32 little-endian || tag), NULL on failure
    error    TEXT,            -- an error code (e.g. no_face), NULL on success
    PRIMARY KEY (sha256, model_id, variant)
)
"""


def default_cache_dir() -> Path:
    """``$FACELEDGER_CACHE`` if set, else ``~/.cache/faceledger``."""
    return Path(os.environ.get("FACELEDGER_CACHE") or Path.home() / ".cache" / "faceledger")


def variant_of(recognizer: Recognizer, face: FaceChoice) -> str:
    """What besides the model id decides a template: detector, face choice, detection options."""
    o = recognizer.detect_options
    return (
        f"detector={recognizer.info.detector};face={face};"
        f"min_face={o.min_face_size:g};score={o.score_threshold:g};max_faces={o.max_faces}"
    )


def _private_file(path: Path) -> None:
    """Create ``path`` with mode 0600 if missing; tighten it to 0600 if it exists."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


class TemplateCache:
    """Cached templates (encrypted) and failures in a SQLite file (created if missing, owner-only)."""

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        from faceledger.store.crypto import load_or_create_key_file

        self.directory = Path(directory) if directory is not None else default_cache_dir()
        if not self.directory.exists():
            self.directory.mkdir(mode=0o700, parents=True)
        elif directory is None:
            os.chmod(self.directory, 0o700)  # the default folder is ours alone
        self.path = self.directory / "templates.sqlite"
        self._aead = AESGCM(load_or_create_key_file(self.directory / "templates.key", create=True))
        for name in ("templates.sqlite", "templates.sqlite-journal"):
            _private_file(self.directory / name)
        self._db = sqlite3.connect(self.path)
        self._db.execute(_SCHEMA)
        self._db.commit()

    @staticmethod
    def _aad(sha: str, model_id: str, variant: str) -> bytes:
        return f"{sha}|{model_id}|{variant}".encode()

    def _open(self, blob: bytes, aad: bytes) -> np.ndarray | None:
        try:
            return np.frombuffer(self._aead.decrypt(blob[:12], blob[12:], aad), "<f4").copy()
        except (InvalidTag, ValueError):
            return None  # another key (or tampered): recomputed, then overwritten

    def load(self, model_id: str, variant: str) -> dict[str, np.ndarray | str]:
        """Every cached entry of a model and variant: ``sha256 -> vector`` or ``sha256 -> error code``."""
        rows = self._db.execute(
            "SELECT sha256, vector, error FROM templates WHERE model_id = ? AND variant = ?",
            (model_id, variant),
        )
        out: dict[str, np.ndarray | str] = {}
        for sha, blob, err in rows:
            value = err if blob is None else self._open(blob, self._aad(sha, model_id, variant))
            if value is not None:
                out[sha] = value
        return out

    def _seal(self, vector: np.ndarray, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, np.asarray(vector, "<f4").tobytes(), aad)

    def store(self, model_id: str, variant: str, entries: dict[str, np.ndarray | str]) -> None:
        """Insert or replace entries (``sha256 -> vector`` or ``sha256 -> error code``) and commit."""
        rows = [
            (sha, model_id, variant, None, v) if isinstance(v, str)
            else (sha, model_id, variant, self._seal(v, self._aad(sha, model_id, variant)), None)
            for sha, v in entries.items()
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO templates VALUES (?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TemplateCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class PhotoTemplates:
    """One template per photo key, in the order asked for.

    ``vectors`` is ``(n, dimension)`` float32 with unit rows where ``ok`` and zero
    rows where not; ``failures`` maps each failed key to its error code.
    ``cache_hits + computed == n``; ``seconds`` is the wall time of the whole call.
    """

    keys: tuple[str, ...]
    sha256: tuple[str, ...]
    vectors: np.ndarray
    ok: np.ndarray
    failures: dict[str, str]
    model_id: str
    cache_hits: int
    computed: int
    seconds: float

    def index(self) -> dict[str, int]:
        """``key -> row`` of :attr:`vectors`."""
        return {k: i for i, k in enumerate(self.keys)}


def _digest_all(root: Path, keys: Sequence[str]) -> list[str]:
    return [hashlib.sha256((root / k).read_bytes()).hexdigest() for k in keys]


def _one(recognizer: Recognizer, data: bytes, face: FaceChoice) -> np.ndarray | str:
    try:
        return recognizer.template(data, face=face).vector
    except InputError as exc:  # no face, undecodable photo, ...: a counted failure, never dropped
        return exc.code


@contextmanager
def _progress(enabled: bool, total: int, label: str) -> Iterator:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # No bar for no work (every template from the cache): a "0/0" bar says nothing.
    with Progress(*columns, console=Console(stderr=True), disable=not enabled or total == 0, transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def compute_templates(
    recognizer: Recognizer,
    root: str | os.PathLike,
    keys: Sequence[str],
    cache: TemplateCache | None = None,
    face: FaceChoice = "center",
    progress: bool = True,
) -> PhotoTemplates:
    """Templates of the photos ``root / key`` for every key, using and filling ``cache``.

    ``face`` chooses the face in each photo (default: nearest the centre). New
    entries are written to the cache every 256 photos, so an interrupted run keeps
    its work. ``progress`` shows a rich progress bar on stderr.
    """
    start = time.perf_counter()
    root = Path(root)
    keys = tuple(keys)
    shas = _digest_all(root, keys)
    variant = variant_of(recognizer, face)
    known = cache.load(recognizer.model_id, variant) if cache is not None else {}
    results: dict[str, np.ndarray | str] = {s: known[s] for s in shas if s in known}
    hits, pending = len(results), {}
    todo = [(k, s) for k, s in zip(keys, shas, strict=True) if s not in results]
    with _progress(progress, len(todo), f"templates ({recognizer.model_id})") as advance:
        for key, sha in todo:
            if sha not in results:  # the same photo may appear under two keys
                results[sha] = pending[sha] = _one(recognizer, (root / key).read_bytes(), face)
            advance()
            if cache is not None and len(pending) >= 256:
                cache.store(recognizer.model_id, variant, pending)
                pending = {}
    if cache is not None and pending:
        cache.store(recognizer.model_id, variant, pending)
    return _assemble(keys, shas, results, recognizer, hits, len(todo), time.perf_counter() - start)


def check_cache(
    recognizer: Recognizer,
    root: str | os.PathLike,
    result: PhotoTemplates,
    face: FaceChoice = "center",
    count: int = 3,
    tolerance: float = 1e-4,
) -> int:
    """Recompute ``count`` evenly spaced photos of ``result`` and compare with it.

    Raises :class:`~faceledger.errors.ConfigError` when a recomputed template differs by
    more than ``tolerance`` in any component, or a failure became a success or vice
    versa: the cache was filled by other code and must be deleted (or bypassed).
    Returns the number of photos checked.
    """
    n = len(result.keys)
    picks = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(count, n))}) if n else []
    for i in picks:
        key = result.keys[i]
        fresh = _one(recognizer, (Path(root) / key).read_bytes(), face)
        stale = (isinstance(fresh, str) != (not result.ok[i])) or (
            not isinstance(fresh, str) and float(np.abs(fresh - result.vectors[i]).max()) > tolerance
        )
        if stale:
            raise ConfigError(
                f"cached template of {key} no longer matches what {recognizer.model_id} computes: "
                "the cache was filled by other code; delete it or run without the cache"
            )
    return len(picks)


def _assemble(
    keys: tuple[str, ...],
    shas: list[str],
    results: dict[str, np.ndarray | str],
    recognizer: Recognizer,
    hits: int,
    computed: int,
    seconds: float,
) -> PhotoTemplates:
    dim = recognizer.info.dimension
    vectors = np.zeros((len(keys), dim), np.float32)
    ok = np.zeros(len(keys), bool)
    failures = {}
    for i, (key, sha) in enumerate(zip(keys, shas, strict=True)):
        r = results[sha]
        if isinstance(r, str):
            failures[key] = r
        else:
            vectors[i], ok[i] = r, True
    return PhotoTemplates(
        keys, tuple(shas), vectors, ok, failures, recognizer.model_id, hits, computed, seconds
    )
