"""Labeled Faces in the Wild: the official pairs files and the "extended" all-pairs sets.

Layout expected under an LFW root (``<testdata>/lfw``)::

    pairs.txt            View 2: header "10 300", then per fold 300 same + 300 different pairs
    pairsDevTrain.txt    View 1 training: header N, then N same + N different pairs
    pairsDevTest.txt     View 1 test: same format
    images/<Name>/<Name>_<NNNN>.jpg

A same-person line is ``name n1 n2``; a different-person line ``name1 n1 name2 n2``.
Images are named by a *key*, their path relative to ``images/`` (e.g.
``"Aaron_Peirsol/Aaron_Peirsol_0001.jpg"``); a person's identity is the folder name.

The *extended* set of an image collection compares every image with every other:
genuine = all pairs of images of the same person (people with 2+ images), impostor =
all pairs of different people (or a seeded uniform sample of them). Scores are
cosine similarities of unit templates; a pair involving an image without a template
(failure to detect) scores :data:`FAILED_SCORE`, i.e. a non-match, and is counted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceledger.errors import ConfigError

__all__ = [
    "FAILED_SCORE",
    "ExtendedScores",
    "dataset_digest",
    "Pair",
    "PairSet",
    "extended_scores",
    "identity_of",
    "image_key",
    "lfw_root",
    "pair_scores",
    "read_pairs",
]

#: The score given to a pair whose photo yielded no template: below any cosine of a real pair.
FAILED_SCORE = -1.0


def lfw_root(testdata: str | os.PathLike | None = None) -> Path:
    """The LFW folder: ``<testdata>/lfw`` with ``testdata`` from the argument,
    ``$FACELEDGER_TESTDATA``, or ``../shared/testdata`` beside the repository."""
    if testdata is None:
        testdata = os.environ.get("FACELEDGER_TESTDATA") or Path(__file__).parents[3] / "../shared/testdata"
    return Path(testdata).resolve() / "lfw"


def image_key(name: str, number: int) -> str:
    """``"Name/Name_0007.jpg"`` for image 7 of ``Name`` (path relative to ``images/``)."""
    return f"{name}/{name}_{number:04d}.jpg"


def identity_of(key: str) -> str:
    """The person an image key belongs to (its folder)."""
    return key.split("/", 1)[0]


def dataset_digest(pairs_path: str | os.PathLike, image_sha256: Sequence[str]) -> str:
    """SHA-256 naming an evaluation set: of the pairs file's SHA-256 (hex), then each
    image's SHA-256 (hex) in sorted order, each followed by a newline."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(Path(pairs_path).read_bytes()).hexdigest().encode() + b"\n")
    for digest in sorted(image_sha256):
        h.update(digest.encode() + b"\n")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Pair:
    """One protocol pair: two image keys, whether they show the same person, and the fold (0-based)."""

    a: str
    b: str
    same: bool
    fold: int


@dataclass(frozen=True)
class PairSet:
    """The pairs of one protocol file, in file order."""

    name: str
    path: Path
    pairs: tuple[Pair, ...]

    @property
    def n_genuine(self) -> int:
        return sum(p.same for p in self.pairs)

    @property
    def n_impostor(self) -> int:
        return len(self.pairs) - self.n_genuine

    @property
    def n_folds(self) -> int:
        return len({p.fold for p in self.pairs})

    def images(self) -> list[str]:
        """Every image key the pairs use, sorted."""
        return sorted({k for p in self.pairs for k in (p.a, p.b)})


def _parse_line(fields: list[str], where: str) -> tuple[str, str, bool]:
    try:
        if len(fields) == 3:
            return image_key(fields[0], int(fields[1])), image_key(fields[0], int(fields[2])), True
        if len(fields) == 4:
            return image_key(fields[0], int(fields[1])), image_key(fields[2], int(fields[3])), False
    except ValueError:
        pass
    raise ConfigError(f"{where}: expected 'name n1 n2' or 'name1 n1 name2 n2', got {' '.join(fields)!r}")


def read_pairs(path: str | os.PathLike) -> PairSet:
    """Parse an LFW pairs file: View 2 (header ``folds n``) or View 1 (header ``n``).

    Each fold holds ``n`` same-person lines then ``n`` different-person lines; a View 1
    file is one fold. Raises :class:`~faceledger.errors.ConfigError` on any mismatch.
    """
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pairs file ({exc.strerror})") from None
    if not lines:
        raise ConfigError(f"{path}: empty pairs file")
    try:
        header = [int(v) for v in lines[0]]
    except ValueError:
        raise ConfigError(f"{path}: bad header {' '.join(lines[0])!r}") from None
    folds, per_side = (1, header[0]) if len(header) == 1 else (header[0], header[1])
    body = lines[1:]
    if len(header) > 2 or len(body) != folds * 2 * per_side:
        raise ConfigError(f"{path}: header promises {folds} x 2 x {per_side} pairs, found {len(body)} lines")
    pairs = []
    for j, fields in enumerate(body):
        fold, pos = divmod(j, 2 * per_side)
        a, b, same = _parse_line(fields, f"{path}:{j + 2}")
        if same != (pos < per_side):
            raise ConfigError(f"{path}:{j + 2}: a {'same' if same else 'different'}-person pair out of place")
        pairs.append(Pair(a, b, same, fold))
    return PairSet(name=path.name, path=path, pairs=tuple(pairs))


def pair_scores(
    pairs: Sequence[Pair], index: dict[str, int], vectors: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Cosine score of each pair from unit ``vectors`` (rows named by ``index``).

    A pair with an image whose ``ok`` flag is False scores :data:`FAILED_SCORE`.
    """
    ia = np.array([index[p.a] for p in pairs], dtype=np.int64)
    ib = np.array([index[p.b] for p in pairs], dtype=np.int64)
    scores = np.einsum("ij,ij->i", vectors[ia].astype(np.float64), vectors[ib].astype(np.float64))
    scores = np.clip(scores, -1.0, 1.0)
    scores[~(ok[ia] & ok[ib])] = FAILED_SCORE
    return scores


@dataclass(frozen=True)
class ExtendedScores:
    """Scores of the extended protocol over one image collection.

    ``genuine_failed`` / ``impostor_failed`` count the pairs scored :data:`FAILED_SCORE`
    because an image had no template. ``impostor_total`` is the number of
    different-person pairs before any sampling.
    """

    genuine: np.ndarray
    impostor: np.ndarray
    genuine_failed: int
    impostor_failed: int
    impostor_total: int
    n_images: int
    n_people_with_pairs: int


def extended_scores(
    keys: Sequence[str],
    vectors: np.ndarray,
    ok: np.ndarray,
    max_impostors: int | None = None,
    seed: int = 0,
    block: int = 1024,
) -> ExtendedScores:
    """All genuine and impostor scores among ``keys`` (each unordered pair once).

    Computed block by block from the ``(n, d)`` unit ``vectors``, so tens of millions
    of pairs fit in memory as float32 scores. With ``max_impostors`` a seeded uniform
    sample (without replacement) of that many impostor pairs is kept.
    """
    if len(keys) != len(vectors) or len(keys) != len(ok):
        raise ValueError("keys, vectors and ok differ in length")
    ids = np.unique([identity_of(k) for k in keys], return_inverse=True)[1]
    v = np.where(np.asarray(ok)[:, None], np.asarray(vectors, np.float32), 0.0).astype(np.float32)
    bad = ~np.asarray(ok, dtype=bool)
    gen, imp, imp_bad, gen_fail = [], [], [], 0
    n = len(keys)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = np.clip(v[start:stop] @ v.T, -1.0, 1.0)
        rows = np.arange(start, stop)[:, None]
        upper = np.arange(n)[None, :] > rows
        failed = bad[start:stop, None] | bad[None, :]
        sims[failed] = FAILED_SCORE
        same = ids[start:stop, None] == ids[None, :]
        gen.append(sims[upper & same])
        imp.append(sims[upper & ~same])
        imp_bad.append(failed[upper & ~same])
        gen_fail += int(np.count_nonzero(upper & same & failed))
    genuine, impostor, impostor_bad = np.concatenate(gen), np.concatenate(imp), np.concatenate(imp_bad)
    total = impostor.size
    if max_impostors is not None and total > max_impostors:
        keep = np.sort(np.random.default_rng(seed).choice(total, size=max_impostors, replace=False))
        impostor, impostor_bad = impostor[keep], impostor_bad[keep]
    people = int(np.count_nonzero(np.bincount(ids) >= 2))
    return ExtendedScores(genuine, impostor, gen_fail, int(impostor_bad.sum()), total, n, people)
