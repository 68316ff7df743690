"""The manifest of an archive redaction: what was done, so a rerun skips it and redoes the rest.

It lives in the output folder as ``.faceledger-redact.jsonl``: a first line with the
settings (every option that changes the output, and the detector's model id), then one
line per finished file, appended and flushed to disk as each file completes::

    {"manifest": 1, "settings": {...}, "settings_sha256": "..."}
    {"source": "a/b.jpg", "source_sha256": "...", "output": "a/b.jpg", "output_sha256": "...",
     "kind": "photo", "frames": 1, "faces": 12, "obscured": 0, "error_code": null}

A file counts as done only if its line is there, its input still hashes to
``source_sha256`` and its output still hashes to ``output_sha256``. A half-written last
line (a crash while appending) is ignored; anything else unreadable raises
:class:`ManifestError`, never a silent restart. Files whose detection failed (outputs
written fully obscured, fail closed) are recorded but not counted as done: a rerun tries
them again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceledger.errors import InputError
from faceledger.models.files import sha256_file

__all__ = ["MANIFEST_NAME", "Manifest", "ManifestError", "ManifestRecord"]

MANIFEST_NAME = ".faceledger-redact.jsonl"
_VERSION = 1


class ManifestError(InputError):
    """The output folder's manifest is unreadable or was written with other settings."""

    code = "manifest_mismatch"


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    """One finished file: paths relative to the archive and output roots, and both SHA-256."""

    source: str
    source_sha256: str
    output: str | None
    output_sha256: str | None
    kind: str
    frames: int = 0
    faces: int = 0
    obscured: int = 0
    error_code: str | None = None

    @property
    def complete(self) -> bool:
        """Redacted with no frame obscured for a failed detection: nothing left to redo."""
        return self.output is not None and self.error_code is None and self.obscured == 0


class Manifest:
    """The manifest file of one output folder (one writer: the process driving the run)."""

    def __init__(self, output_root: Path, settings: dict[str, Any]) -> None:
        self.root = output_root
        self.path = output_root / MANIFEST_NAME
        self.settings = settings
        self.settings_sha256 = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        self.records: dict[str, ManifestRecord] = {}

    @classmethod
    def open(cls, output_root: Path, settings: dict[str, Any]) -> Manifest:
        """Read the manifest of ``output_root`` (checking its settings) or start a new one."""
        manifest = cls(output_root, settings)
        if manifest.path.exists():
            manifest._read()
        else:
            output_root.mkdir(parents=True, exist_ok=True)
            header = {"manifest": _VERSION, "settings": settings, "settings_sha256": manifest.settings_sha256}
            manifest._append(header)
        return manifest

    def _read(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # a line cut short by a crash: drop it before appending
            data = data[: data.rfind(b"\n") + 1]
            with self.path.open("r+b") as fh:
                fh.truncate(len(data))
        lines = data.split(b"\n")
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ManifestError(f"{self.path}: unreadable manifest header; remove the output folder to start over",
                                path=str(self.path)) from None
        if header.get("settings_sha256") != self.settings_sha256:
            raise ManifestError(
                f"{self.path}: this output folder was redacted with other settings ({_diff(header, self.settings)}); "
                "use the same settings to resume, or another output folder",
                path=str(self.path),
            )
        body = [line for line in lines[1:] if line.strip()]
        for n, line in enumerate(body):
            try:
                record = ManifestRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError, UnicodeDecodeError):
                raise ManifestError(f"{self.path}: unreadable line {n + 2}", path=str(self.path)) from None
            self.records[record.source] = record

    def done(self, source_rel: str, source_sha256: str) -> ManifestRecord | None:
        """The record of ``source_rel`` if it is complete and both files still hash as recorded."""
        record = self.records.get(source_rel)
        if record is None or not record.complete or record.source_sha256 != source_sha256:
            return None
        output = self.root / record.output  # type: ignore[operator]
        if not output.is_file() or sha256_file(output) != record.output_sha256:
            return None
        return record

    def add(self, record: ManifestRecord) -> None:
        """Append ``record`` and flush it to disk."""
        self.records[record.source] = record
        self._append({k: getattr(record, k) for k in record.__slots__})

    def _append(self, obj: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _diff(header: dict[str, Any], settings: dict[str, Any]) -> str:
    old = header.get("settings") or {}
    settings = json.loads(json.dumps(settings))  # as the header was written: tuples are lists there
    changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    return "changed: " + ", ".join(changed) if changed else "unknown settings"
