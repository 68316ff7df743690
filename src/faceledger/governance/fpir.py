"""How often a search for someone not enrolled is expected to return a candidate, and the policy's cap on it.

Each enrolled subject is one more chance of a false match, so the expected
false-positive identification rate (FPIR) of a gallery of ``N`` subjects searched at
an operating point of false-match rate ``FMR`` is ``1 - (1 - FMR) ** N``: a point
that is strict for 1:1 verification is loose for a large gallery. The policy's
``[identification] max_expected_fpir`` caps it; a search whose operating point would
exceed the cap for the gallery's size is refused, naming a calibrated point that
would not. The FMR used is the point's upper confidence bound where calibration
published one (``fmr_upper``), else its measured FMR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from faceledger.errors import FpirTooHighError
from faceledger.types import OperatingPoint

__all__ = ["FpirCheck", "check_expected_fpir", "expected_fpir", "point_fmr"]


def expected_fpir(fmr: float | None, subjects: int) -> float | None:
    """Share of non-mated searches expected to return a candidate: ``1 - (1 - fmr) ** subjects``.

    Assumes independent comparisons (one template per subject); ``None`` if ``fmr`` is unknown.
    """
    if fmr is None:
        return None
    return float(1.0 - (1.0 - fmr) ** max(subjects, 0))


def point_fmr(point: OperatingPoint) -> float:
    """The FMR a point is held to: its published upper confidence bound, else its measured FMR."""
    return point.fmr_upper if point.fmr_upper is not None else point.measured_fmr


@dataclass(frozen=True)
class FpirCheck:
    """What the cap said about one search: the expected FPIR and the cap (``None``: no cap)."""

    expected_fpir: float | None
    max_expected_fpir: float | None


def check_expected_fpir(max_fpir: float | None, gallery: str, subjects: int, point: str,
                        fmr: float | None, calibrated: Mapping[str, OperatingPoint],
                        gallery_points: Mapping[str, float]) -> FpirCheck:
    """Refuse (:class:`~faceledger.errors.FpirTooHighError`) a search whose expected FPIR exceeds ``max_fpir``.

    ``fmr``: the FMR of the threshold in use (``None``: not a calibrated threshold, e.g.
    raised by the policy's floor; such a search is not refused here). ``calibrated``:
    the model's points; ``gallery_points``: the gallery's thresholds by point name.
    """
    fpir = expected_fpir(fmr, subjects)
    if max_fpir is None or fpir is None or fpir <= max_fpir:
        return FpirCheck(fpir, max_fpir)
    usable = sorted((p for p in calibrated.values() if expected_fpir(point_fmr(p), subjects) <= max_fpir),  # type: ignore[operator]
                    key=lambda p: -point_fmr(p))
    in_gallery = [p for p in usable if p.name in gallery_points]
    if in_gallery:
        best = in_gallery[0]
        advice = (f"use operating point '{best.name}' (FMR {point_fmr(best):.1e}: expected FPIR "
                  f"{expected_fpir(point_fmr(best), subjects):.2%})")
    elif usable:
        best = usable[0]
        advice = (f"the model's point '{best.name}' would do (expected FPIR "
                  f"{expected_fpir(point_fmr(best), subjects):.2%}) but gallery '{gallery}' has no threshold for it: "
                  "install the model's thresholds on the gallery")
    else:
        best = None
        advice = "no calibrated operating point keeps it under the cap: split the gallery or search a smaller one"
    raise FpirTooHighError(
        f"gallery '{gallery}' has {subjects:,} subjects: at operating point '{point}' (FMR {fmr:.1e}) a search for "
        f"someone not enrolled is expected to return a candidate {fpir:.2%} of the time, above the policy's "
        f"max_expected_fpir of {max_fpir:.2%}; {advice}",
        reason="expected_fpir", gallery=gallery, subjects=subjects, operating_point=point,
        expected_fpir=fpir, max_expected_fpir=max_fpir, suggested_point=best.name if best else None)
