"""The independent-testing core: raw scores and decisions for third parties' photos.

Third parties (SB 6280's "independent testing") submit batches of photo pairs, or a
gallery and probes, and get back every raw score, the decision at the operating
threshold and the model id. Nothing about the submitted photos is kept: templates
live only in this call's memory, nothing is cached or written. The accountable
wrapper (auditor role, rate limit, one ledger entry saying that a test was run, by
whom and how many comparisons) belongs to the engine, which calls these functions.

A photo where no face can be used (no face, undecodable, ...) is not dropped: its
comparisons carry ``score=None``, ``match=None`` and the error code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from faceledger.errors import InputError
from faceledger.media.image import ImageSource
from faceledger.recognizer import FaceChoice, Recognizer
from faceledger.types import Template

__all__ = ["GalleryTestResult", "PairResult", "PairTestResult", "ProbeResult", "score_gallery", "score_pairs"]


@dataclass(frozen=True, slots=True)
class PairResult:
    """One pair: cosine ``score`` in [-1, 1] and ``match = score >= threshold``, or the error code."""

    index: int
    score: float | None
    match: bool | None
    error: str | None = None


@dataclass(frozen=True)
class PairTestResult:
    """Every pair's result, with the model id, the threshold and its operating point."""

    model_id: str
    operating_point: str
    threshold: float
    results: tuple[PairResult, ...]

    @property
    def comparisons(self) -> int:
        return len(self.results)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's scores against every gallery entry (gallery order) and the top candidates."""

    index: int
    scores: tuple[float, ...] | None
    candidates: tuple[tuple[str, float], ...]
    error: str | None = None


@dataclass(frozen=True)
class GalleryTestResult:
    """Scores of every probe against every gallery entry; ``gallery_errors`` names entries without a face."""

    model_id: str
    operating_point: str
    threshold: float
    gallery: tuple[str, ...]
    gallery_errors: dict[str, str]
    probes: tuple[ProbeResult, ...]

    @property
    def comparisons(self) -> int:
        return len(self.gallery) * len(self.probes)


def _template(rec: Recognizer, photo: ImageSource, face: FaceChoice) -> Template | str:
    try:
        return rec.template(photo, face=face)
    except InputError as exc:
        return exc.code


def score_pairs(
    rec: Recognizer,
    pairs: Sequence[tuple[ImageSource, ImageSource]],
    operating_point: str | None = None,
    face: FaceChoice = "center",
    on_pair: Callable[[int], None] | None = None,
) -> PairTestResult:
    """Score each ``(a, b)`` photo pair and decide at the calibrated ``operating_point`` (default: the model's).

    ``on_pair(done)``, if given, is called after each pair with the number of pairs done (a progress bar).
    """
    point = rec.backend.thresholds.get(operating_point)
    out = []
    for j, (a, b) in enumerate(pairs):
        out.append(_score_pair(rec, j, a, b, face, point.threshold))
        if on_pair is not None:
            on_pair(j + 1)
    return PairTestResult(rec.model_id, point.name, point.threshold, tuple(out))


def _score_pair(rec: Recognizer, j: int, a: ImageSource, b: ImageSource, face: FaceChoice,
                threshold: float) -> PairResult:
    ta, tb = _template(rec, a, face), _template(rec, b, face)
    if isinstance(ta, str) or isinstance(tb, str):
        return PairResult(j, None, None, ta if isinstance(ta, str) else tb)
    s = rec.compare(ta, tb)
    return PairResult(j, s, s >= threshold)




def score_gallery(
    rec: Recognizer,
    gallery: Mapping[str, ImageSource],
    probes: Sequence[ImageSource],
    operating_point: str | None = None,
    top_k: int = 5,
    face: FaceChoice = "center",
) -> GalleryTestResult:
    """Score every probe against every gallery photo (``label -> photo``).

    ``candidates`` are the up to ``top_k`` labels whose score is ``>= threshold``,
    best first. A gallery photo without a face scores -1 against every probe.
    """
    if top_k < 1:
        raise InputError("top_k must be at least 1")
    point = rec.backend.thresholds.get(operating_point)
    labels = tuple(gallery)
    made = {k: _template(rec, gallery[k], face) for k in labels}
    errors = {k: v for k, v in made.items() if isinstance(v, str)}
    g = np.stack([made[k].vector if k not in errors else np.zeros(rec.info.dimension, np.float32) for k in labels])
    results = []
    for j, photo in enumerate(probes):
        t = _template(rec, photo, face)
        if isinstance(t, str):
            results.append(ProbeResult(j, None, (), t))
            continue
        s = np.clip(g.astype(np.float64) @ t.vector.astype(np.float64), -1.0, 1.0)
        s[[k in errors for k in labels]] = -1.0
        order = [i for i in np.argsort(-s, kind="stable")[:top_k] if s[i] >= point.threshold]
        results.append(ProbeResult(j, tuple(float(x) for x in s), tuple((labels[i], float(s[i])) for i in order)))
    return GalleryTestResult(rec.model_id, point.name, point.threshold, labels, errors, tuple(results))


