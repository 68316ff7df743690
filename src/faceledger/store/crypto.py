"""Envelope encryption of templates: AES-256-GCM under per-subject data keys.

* The **key-encryption key** (KEK, 32 random bytes) lives outside the database:
  a file of 64 hex digits with permissions ``0600`` (created on first use next to
  the database as ``<db>.key``), or bytes the operator passes in (e.g. from a
  secrets manager). A check value stored in the database detects a wrong key
  before anything is read or written.
* Each subject has a random 32-byte **data key** (DEK), stored only *wrapped*
  (AES-GCM under the KEK, bound to the subject id). Removing a subject deletes
  its wrapped key together with its rows: its templates can no longer be
  decrypted from any copy of the database made afterwards.
* Each template (and kept photo) is AES-GCM under the subject's DEK with a random
  96-bit nonce; the associated data binds it to its subject and source digest, so
  a ciphertext moved to another row does not decrypt.

Blobs are ``nonce (12 bytes) || ciphertext || tag (16 bytes)``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faceledger.errors import DataKeyError, StoreError

__all__ = ["KEY_BYTES", "DataKey", "Kek", "load_or_create_key_file", "read_key_file", "write_key_file"]

KEY_BYTES = 32
NONCE_BYTES = 12
CHECK_PLAINTEXT = b"faceledger key-encryption key check v1"


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, blob: bytes, aad: bytes, what: str) -> bytes:
    try:
        return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        raise DataKeyError(f"cannot decrypt {what}: wrong key or altered data") from None


class Kek:
    """The key-encryption key: wraps data keys and proves it is the right key."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise DataKeyError(f"a key-encryption key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def check_value(self) -> bytes:
        """A value to store in the database, verified by :meth:`verify` on every open."""
        return _seal(self._aead, CHECK_PLAINTEXT, b"kek-check")

    def verify(self, check: bytes) -> None:
        try:
            ok = _open(self._aead, check, b"kek-check", "the key check") == CHECK_PLAINTEXT
        except DataKeyError:
            ok = False
        if not ok:
            raise DataKeyError("the key-encryption key does not match this database (wrong key file?)")

    def new_data_key(self, subject_id: int) -> tuple[DataKey, bytes]:
        """A fresh data key for ``subject_id`` and its wrapped form to store."""
        raw = os.urandom(KEY_BYTES)
        return DataKey(raw), _seal(self._aead, raw, b"dek:%d" % subject_id)

    def rewrap(self, subject_id: int, wrapped: bytes, new: Kek) -> bytes:
        """A wrapped data key re-wrapped under ``new`` (key rotation)."""
        raw = _open(self._aead, wrapped, b"dek:%d" % subject_id, f"the data key of subject {subject_id}")
        return _seal(new._aead, raw, b"dek:%d" % subject_id)

    def new_named_key(self, name: str) -> tuple[DataKey, bytes]:
        """A fresh data key bound to ``name`` (e.g. a lead's evidence) and its wrapped form."""
        raw = os.urandom(KEY_BYTES)
        return DataKey(raw), _seal(self._aead, raw, b"named:" + name.encode())

    def unwrap_named(self, name: str, wrapped: bytes) -> DataKey:
        return DataKey(_open(self._aead, wrapped, b"named:" + name.encode(), f"the key of {name}"))

    def unwrap(self, subject_id: int, wrapped: bytes) -> DataKey:
        return DataKey(_open(self._aead, wrapped, b"dek:%d" % subject_id, f"the data key of subject {subject_id}"))


class DataKey:
    """A subject's data key: encrypts its templates and photos."""

    def __init__(self, raw: bytes) -> None:
        self._aead = AESGCM(raw)

    def seal_vector(self, vector: np.ndarray, aad: bytes) -> bytes:
        return _seal(self._aead, np.ascontiguousarray(vector, dtype="<f4").tobytes(), aad)

    def open_vector(self, blob: bytes, aad: bytes, dimension: int) -> np.ndarray:
        raw = _open(self._aead, blob, aad, "a template")
        if len(raw) != 4 * dimension:
            raise StoreError(f"a stored template has {len(raw) // 4} values, expected {dimension}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def seal(self, data: bytes, aad: bytes) -> bytes:
        return _seal(self._aead, data, aad)

    def open(self, blob: bytes, aad: bytes, what: str) -> bytes:
        return _open(self._aead, blob, aad, what)


def read_key_file(path: Path) -> bytes:
    """The KEK in ``path`` (64 hex digits); refuses a file others can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except FileNotFoundError:
        raise DataKeyError(f"key file {path} not found: the database's templates cannot be decrypted "
                           "without it (restore it from your key backup)") from None
    except OSError as exc:
        raise DataKeyError(f"cannot read key file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DataKeyError(f"key file {path} is readable by other users: run `chmod 600 {path}`")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise DataKeyError(f"key file {path} does not hold a {KEY_BYTES}-byte key as hex digits")
    return key


def _write_tmp(path: Path, key: bytes) -> Path:
    """``key`` as hex in a new file beside ``path`` (mode 0600, synced); returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def _sync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, key: bytes) -> None:
    """Atomically write (or replace) the key file ``path`` with mode 0600."""
    os.replace(_write_tmp(path, key), path)
    _sync_dir(path)


def load_or_create_key_file(path: Path, create: bool) -> bytes:
    """Read the KEK from ``path``, or create it (mode 0600, atomically) if ``create`` and absent."""
    if path.exists() or not create:
        return read_key_file(path)
    tmp = _write_tmp(path, os.urandom(KEY_BYTES))
    try:
        os.link(tmp, path)  # fails if another process created it meanwhile: then use theirs
        _sync_dir(path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return read_key_file(path)
