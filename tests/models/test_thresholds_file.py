"""The default model's packaged operating points: ordered, bounded, and the strict ones from the tail model."""

from __future__ import annotations

from faceledger.governance.fpir import expected_fpir, point_fmr
from faceledger.models.thresholds import load_packaged_thresholds

MODEL = "sface-2021dec-int8bq"


def test_every_point_publishes_an_fmr_bound_and_stricter_points_are_stricter() -> None:
    t = load_packaged_thresholds(MODEL)
    points = sorted(t.points.values(), key=lambda p: -p.target_fmr)
    assert [p.name for p in points][-3:] == ["fmr1e-6", "fmr1e-7", "fmr1e-8"]
    for looser, stricter in zip(points, points[1:], strict=False):
        assert stricter.threshold > looser.threshold and stricter.measured_fnmr >= looser.measured_fnmr
    for p in points:
        assert p.fmr_upper is not None and p.fmr_upper >= p.measured_fmr
        assert p.fmr_upper <= 1.5 * p.target_fmr  # the bound stays near the target it was chosen for
    assert t.default == "fmr1e-3"


def test_the_calibrated_points_cover_galleries_up_to_a_million_at_fpir_one_percent() -> None:
    t = load_packaged_thresholds(MODEL)

    def loosest(subjects: int) -> str | None:
        ok = [p for p in t.points.values() if expected_fpir(point_fmr(p), subjects) <= 0.01]
        return max(ok, key=point_fmr).name if ok else None

    assert loosest(5_000) == "fmr1e-6" and loosest(100_000) == "fmr1e-7" and loosest(1_000_000) == "fmr1e-8"
    assert loosest(10_000_000) is None  # 10M subjects need FMR 1e-9: refused under a 1% cap
    assert t.calibration["tail"]["xi"] < 0  # a bounded tail, as cosine scores are
