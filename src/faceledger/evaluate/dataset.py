"""Evaluation datasets: photos with identities, and the operator's subgroup labels.

A dataset is either

* a **folder per identity**: ``root/<identity>/<photo>.jpg`` (any image suffix), or
* an **LFW-style pairs file** (``pairs.txt`` with images under ``images/`` beside it), or
  a folder holding ``pairs.txt`` and ``images/``: the images are those the pairs name,
  and the protocol pairs are kept for the 10-fold accuracy.

Photos are named by a *key*, their path relative to the image root with ``/``
separators; the identity is the key's first folder.

Subgroup labels come **only** from the operator: a CSV whose first column is
``image`` (a key, or a bare file name when file names are unique) or ``identity``,
and whose other columns are any attributes the operator chooses (``gender``,
``age_band``, ...). FaceLedger never infers an attribute from a face.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faceledger.errors import ConfigError
from faceledger.evaluate.lfw import Pair, identity_of, read_pairs

__all__ = ["Dataset", "Labels", "labels_from_name_lists", "load_dataset", "read_labels"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Dataset:
    """Photos (``root / key``) with identities and, for a pairs dataset, its protocol pairs."""

    name: str
    root: Path
    keys: tuple[str, ...]
    pairs: tuple[Pair, ...] = ()
    pairs_path: Path | None = None

    @property
    def identities(self) -> tuple[str, ...]:
        """The identity of each key, in key order."""
        return tuple(identity_of(k) for k in self.keys)

    @property
    def n_identities(self) -> int:
        return len(set(self.identities))

    def digest(self, image_sha256: Sequence[str]) -> str:
        """SHA-256 naming this evaluation set (hex).

        Over the pairs file's SHA-256 hex (or ``"folder"``) and a newline, then each
        ``identity`` + tab + photo SHA-256 hex in sorted order, each followed by a newline.
        """
        h = hashlib.sha256()
        head = hashlib.sha256(self.pairs_path.read_bytes()).hexdigest() if self.pairs_path else "folder"
        h.update(head.encode() + b"\n")
        for line in sorted(f"{i}\t{s}" for i, s in zip(self.identities, image_sha256, strict=True)):
            h.update(line.encode() + b"\n")
        return h.hexdigest()


def load_dataset(path: str | os.PathLike) -> Dataset:
    """A dataset from a pairs file, a folder with ``pairs.txt`` + ``images/``, or a folder per identity."""
    path = Path(path)
    if path.is_file():
        return _pairs_dataset(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such dataset (expected a folder or an LFW-style pairs file)")
    if (path / "pairs.txt").is_file() and (path / "images").is_dir():
        return _pairs_dataset(path / "pairs.txt")
    return _folder_dataset(path)


def _pairs_dataset(pairs_file: Path) -> Dataset:
    ps = read_pairs(pairs_file)
    root = pairs_file.parent / "images"
    if not root.is_dir():
        raise ConfigError(f"{pairs_file}: the images folder {root} is missing")
    keys = tuple(ps.images())
    missing = [k for k in keys if not (root / k).is_file()]
    if missing:
        raise ConfigError(f"{pairs_file}: {len(missing)} image(s) named by the pairs are missing, e.g. {missing[0]}")
    return Dataset(f"{pairs_file.parent.name}/{pairs_file.name}", root, keys, ps.pairs, pairs_file)


def _folder_dataset(root: Path) -> Dataset:
    keys = sorted(
        p.relative_to(root).as_posix()
        for sub in root.iterdir() if sub.is_dir()
        for p in sub.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not keys:
        raise ConfigError(f"{root}: no photos found (expected one folder per identity holding images)")
    return Dataset(root.name, root, tuple(keys))


@dataclass(frozen=True)
class Labels:
    """Subgroup labels per photo: ``values[attribute][i]`` is the label of ``keys[i]`` (``None``: unlabelled).

    ``source`` says where they came from (the operator's file), for the report;
    ``conflicts`` names the photos given two different labels (left unlabelled).
    """

    keys: tuple[str, ...]
    values: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)
    source: str = ""
    conflicts: tuple[str, ...] = ()

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.values)

    def of(self, attribute: str) -> tuple[str | None, ...]:
        try:
            return self.values[attribute]
        except KeyError:
            raise ConfigError(f"no label column '{attribute}' (have: {', '.join(self.values) or 'none'})") from None

    def with_labels(self, attribute: str, changes: Mapping[str, str | None]) -> Labels:
        """A copy where the photos named in ``changes`` (key -> label) carry new labels for ``attribute``."""
        idx = {k: i for i, k in enumerate(self.keys)}
        col = list(self.of(attribute))
        for key, label in changes.items():
            col[idx[key]] = label
        return Labels(self.keys, {**self.values, attribute: tuple(col)}, self.source, self.conflicts)


def read_labels(path: str | os.PathLike, dataset: Dataset) -> Labels:
    """Subgroup labels from the operator's CSV, matched to ``dataset``'s photos.

    First column ``image`` (key, or bare file name if unique) or ``identity``; every
    other column is an attribute. Empty cells mean unlabelled; a photo given two
    different labels is left unlabelled and named in ``conflicts``. Rows naming no photo
    of the dataset are ignored (a label file may cover a larger collection).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the labels file ({exc.strerror})") from None
    if len(rows) < 2 or len(rows[0]) < 2:
        raise ConfigError(f"{path}: expected a header 'image|identity,<attribute>,...' and at least one row")
    kind, attrs = rows[0][0].strip().lower(), [a.strip() for a in rows[0][1:]]
    if kind not in ("image", "identity"):
        raise ConfigError(f"{path}: the first column must be 'image' or 'identity', got '{rows[0][0]}'")
    if len(set(attrs)) != len(attrs) or not all(attrs):
        raise ConfigError(f"{path}: attribute columns must have distinct, non-empty names")
    lookup = _lookup(dataset.keys, kind)
    cols: dict[str, list[str | None]] = {a: [None] * len(dataset.keys) for a in attrs}
    clash: dict[str, set[int]] = {a: set() for a in attrs}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        if len(row) != len(attrs) + 1:
            raise ConfigError(f"{path}:{n}: expected {len(attrs) + 1} cells, got {len(row)}")
        for i in lookup.get(row[0].strip(), ()):
            for a, cell in zip(attrs, row[1:], strict=True):
                value = cell.strip() or None
                if value is not None and cols[a][i] not in (None, value):
                    clash[a].add(i)  # two rows give this photo different labels: leave it unlabelled
                cols[a][i] = value if cols[a][i] is None else cols[a][i]
    for a, rows_ in clash.items():
        for i in rows_:
            cols[a][i] = None
    conflicts = tuple(sorted({dataset.keys[i] for r in clash.values() for i in r}))
    return Labels(dataset.keys, {a: tuple(c) for a, c in cols.items()}, str(path), conflicts)


def _lookup(keys: Sequence[str], kind: str) -> dict[str, list[int]]:
    """Name in the CSV -> rows of ``keys`` it labels (by identity, key, or unique bare file name)."""
    out: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        names = (identity_of(key),) if kind == "identity" else (key, key.rsplit("/", 1)[-1])
        for name in names:
            out.setdefault(name, []).append(i)
    if kind == "image":
        dupes = [n for n, rows in out.items() if len(rows) > 1 and "/" not in n]
        for n in dupes:  # a bare file name shared by two photos labels neither: ambiguous
            del out[n]
    return out


def labels_from_name_lists(
    dataset: Dataset, attribute: str, lists: Mapping[str, str | os.PathLike]
) -> Labels:
    """Per-image labels from files listing image file names, one a line (``label -> file``).

    This reads annotation files such as LFW's ``female_names.txt`` / ``male_names.txt``.
    A photo named in two lists is left unlabelled and listed in ``conflicts`` (LFW's
    gender lists name a few photos in both).
    """
    lookup = _lookup(dataset.keys, "image")
    col: list[str | None] = [None] * len(dataset.keys)
    conflicts: set[int] = set()
    for label, file in lists.items():
        try:
            names = [ln.strip() for ln in Path(file).read_text().splitlines() if ln.strip()]
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read the name list ({exc.strerror})") from None
        for name in names:
            for i in lookup.get(name, ()):
                if col[i] not in (None, label):
                    conflicts.add(i)
                col[i] = label
    for i in conflicts:
        col[i] = None
    source = ", ".join(f"{label}: {Path(f).name}" for label, f in lists.items())
    names = tuple(dataset.keys[i] for i in sorted(conflicts))
    return Labels(dataset.keys, {attribute: tuple(col)}, source, names)
