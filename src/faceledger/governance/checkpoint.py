"""Signed checkpoints of the ledger's head, and the Ed25519 keys that sign them.

A checkpoint says "entry ``seq`` of this ledger had hash ``head_hash`` at ``ts``",
signed with the deployment's Ed25519 key. It is written as a small JSON file that
the operator ships outside the database (another machine, a WORM bucket, an email
to the auditor). Later, :func:`verify_ledger` checks the signatures and then the
chain against every checkpoint: a ledger that was cut short (``truncated``) or
rewritten before the checkpoint, even with every hash recomputed (``diverged``),
no longer matches.

What is signed: the canonical JSON (:func:`faceledger.core.chain.canonical_json`) of
``{"format": "faceledger-checkpoint/1", "seq", "head_hash", "ts", "key_id"}``.
``key_id`` is the first 16 hex digits of the SHA-256 of the raw 32-byte public key.
Key files are PEM (PKCS#8 private, SubjectPublicKeyInfo public); the private key is
created with mode 0600 and refused if group or others can read it.

Only this module (of :mod:`faceledger.governance`) imports ``cryptography``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from faceledger.core.chain import canonical_json
from faceledger.errors import ConfigError, ConflictError, InputError
from faceledger.governance._time import from_iso, to_iso
from faceledger.governance.ledger import GENESIS_HEAD, ChainHead
from faceledger.governance.verify import ChainProblem, ChainReport, ProblemKind, verify_chain

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "checkpoint_from_dict",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "make_checkpoint",
    "read_checkpoint",
    "save_private_key",
    "save_public_key",
    "signature_ok",
    "verify_ledger",
    "write_checkpoint",
]

CHECKPOINT_FORMAT = "faceledger-checkpoint/1"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the chain head. ``signature`` is 128 hex digits (Ed25519)."""

    seq: int
    head_hash: str
    ts: str
    key_id: str
    signature: str

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return _message(self.seq, self.head_hash, self.ts, self.key_id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON file's content (with its format tag)."""
        return {"format": CHECKPOINT_FORMAT, **{f.name: getattr(self, f.name) for f in fields(self)}}


def _message(seq: int, head_hash: str, ts: str, kid: str) -> bytes:
    payload = {"format": CHECKPOINT_FORMAT, "seq": seq, "head_hash": head_hash, "ts": ts, "key_id": kid}
    return canonical_json(payload)


def checkpoint_from_dict(data: Mapping[str, Any]) -> Checkpoint:
    """Read a checkpoint's JSON content; wrong format or types raise :class:`InputError`."""
    if not isinstance(data, Mapping) or data.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"not a FaceLedger checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    names = [f.name for f in fields(Checkpoint)]
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"checkpoint is missing {', '.join(missing)}")
    seq = data["seq"]
    if type(seq) is not int or seq < 0:
        raise InputError("checkpoint seq must be a non-negative integer")
    if not all(isinstance(data[n], str) for n in names[1:]):
        raise InputError("checkpoint head_hash, ts, key_id and signature must be strings")
    from_iso(data["ts"], "checkpoint ts")
    return Checkpoint(**{n: data[n] for n in names})


# -- keys ------------------------------------------------------------------------------------------


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key (from the operating system's random source)."""
    return Ed25519PrivateKey.generate()


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """16 hex digits naming a key: the start of SHA-256 over the raw public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def save_private_key(key: Ed25519PrivateKey, path: str | Path, password: bytes | None = None) -> Path:
    """Write ``key`` as PEM with mode 0600; an existing file is never overwritten (:class:`ConflictError`)."""
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return _write_new(Path(path), pem, 0o600)


def save_public_key(key: Ed25519PublicKey | Ed25519PrivateKey, path: str | Path) -> Path:
    """Write the public half as PEM (mode 0644), for whoever verifies checkpoints."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _write_new(Path(path), pem, 0o644)


def load_private_key(path: str | Path, password: bytes | None = None) -> Ed25519PrivateKey:
    """Read a private key; refuse files that group or others can read, or that are not Ed25519."""
    path = Path(path)
    data = _read(path, "private key")
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"private key {path} is readable by others (mode {mode:04o}); run: chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read private key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read a PEM public key (or the public half of an unencrypted private key file)."""
    path = Path(path)
    data = _read(path, "public key")
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


# -- checkpoints -----------------------------------------------------------------------------------


def make_checkpoint(head: ChainHead, key: Ed25519PrivateKey, at: datetime) -> Checkpoint:
    """Sign ``head`` (the last entry's seq and hash) at time ``at``."""
    ts, kid = to_iso(at, "checkpoint ts"), key_id(key)
    signature = key.sign(_message(head.seq, head.hash, ts, kid)).hex()
    return Checkpoint(seq=head.seq, head_hash=head.hash, ts=ts, key_id=kid, signature=signature)


def signature_ok(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> bool:
    """Whether ``checkpoint`` was signed by ``public_key`` and not altered since."""
    if checkpoint.key_id != key_id(public_key):
        return False
    try:
        public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def write_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write the checkpoint as JSON; an existing file is never overwritten (:class:`ConflictError`)."""
    text = json.dumps(checkpoint.to_dict(), indent=2, sort_keys=True) + "\n"
    return _write_new(Path(path), text.encode(), 0o644)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint file written by :func:`write_checkpoint` (not yet verified)."""
    path = Path(path)
    try:
        data = json.loads(_read(path, "checkpoint"))
    except ValueError:
        raise InputError(f"checkpoint {path} is not JSON") from None
    return checkpoint_from_dict(data)


def verify_ledger(
    rows: Iterable[Any],
    checkpoints: Iterable[Checkpoint],
    public_keys: Iterable[Ed25519PublicKey],
    after: ChainHead = GENESIS_HEAD,
) -> ChainReport:
    """Check every checkpoint's signature, then the chain against the checkpoints that verify.

    A checkpoint signed by none of ``public_keys`` (several after a key change), or whose
    signature fails, is reported as ``bad_checkpoint`` and not used; the report then
    lists those problems first, followed by the chain's first problem if any.
    """
    keys = {key_id(k): k for k in public_keys}
    good: list[Checkpoint] = []
    bad: list[ChainProblem] = []
    for cp in checkpoints:
        key = keys.get(cp.key_id)
        if key is None:
            why = f"checkpoint at seq {cp.seq} is signed by unknown key {cp.key_id}"
        elif not signature_ok(cp, key):
            why = f"checkpoint at seq {cp.seq}: the signature does not verify (forged or altered)"
        else:
            good.append(cp)
            continue
        bad.append(ChainProblem(ProblemKind.BAD_CHECKPOINT, cp.seq, None, why))
    report = verify_chain(rows, good, after)
    return replace(report, problems=(*bad, *report.problems))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _write_new(path: Path, data: bytes, mode: int) -> Path:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise ConflictError(f"{path} already exists; FaceLedger does not overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # exactly this mode, whatever the umask
    return path
