"""The policy's cap on expected FPIR: a gallery too large for the operating point is refused, ledgered."""

from __future__ import annotations

import pytest

from faceledger.errors import ConfigError, FpirTooHighError
from faceledger.governance.fpir import check_expected_fpir, expected_fpir, point_fmr
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.policy import parse_policy
from faceledger.types import OperatingPoint

from .conftest import GALLERY, INVESTIGATOR, POLICY, photo
from .test_accountability import authorization


def point(name: str, fmr: float, upper: float | None = None) -> OperatingPoint:
    return OperatingPoint(name, fmr, 0.5, fmr, 0.01, "test", fmr_upper=upper)


POINTS = {p.name: p for p in (point("fmr1e-3", 1e-3), point("fmr1e-5", 1e-5, 1.4e-5), point("fmr1e-7", 8e-8, 1e-7))}
IN_GALLERY = {"fmr1e-3": 0.36, "fmr1e-5": 0.46, "fmr1e-7": 0.55}


def test_the_cap_names_the_loosest_point_that_keeps_under_it() -> None:
    assert check_expected_fpir(None, GALLERY, 10**6, "fmr1e-3", 1e-3, POINTS, IN_GALLERY).expected_fpir == 1.0
    ok = check_expected_fpir(0.01, GALLERY, 500, "fmr1e-5", 1.4e-5, POINTS, IN_GALLERY)
    assert ok.expected_fpir == pytest.approx(expected_fpir(1.4e-5, 500)) and ok.max_expected_fpir == 0.01
    with pytest.raises(FpirTooHighError) as err:  # 1e-5 bound 1.4e-5 at 1,000 subjects: 1.4%
        check_expected_fpir(0.01, GALLERY, 1_000, "fmr1e-5", 1.4e-5, POINTS, IN_GALLERY)
    assert err.value.details["suggested_point"] == "fmr1e-7" and "use operating point 'fmr1e-7'" in err.value.message
    assert err.value.code == "expected_fpir_too_high"
    with pytest.raises(FpirTooHighError, match="has no threshold for it"):  # the gallery lacks the point
        check_expected_fpir(0.01, GALLERY, 1_000, "fmr1e-5", 1.4e-5, POINTS, {"fmr1e-3": 0.36, "fmr1e-5": 0.46})
    with pytest.raises(FpirTooHighError, match="no calibrated operating point") as err:
        check_expected_fpir(0.01, GALLERY, 10**6, "fmr1e-7", 1e-7, POINTS, IN_GALLERY)
    assert err.value.details["suggested_point"] is None
    assert point_fmr(POINTS["fmr1e-7"]) == 1e-7 and point_fmr(POINTS["fmr1e-3"]) == 1e-3
    # a threshold the policy raised above calibration has no known FMR: not refused here
    assert check_expected_fpir(0.01, GALLERY, 10**6, "fmr1e-3", None, POINTS, IN_GALLERY).expected_fpir is None


def test_the_policy_reads_the_cap() -> None:
    assert parse_policy(POLICY).identification.max_expected_fpir is None
    capped = parse_policy(POLICY.replace("enabled = true", "enabled = true\nmax_expected_fpir = 0.01"))
    assert capped.identification.max_expected_fpir == 0.01
    assert capped.digest != parse_policy(POLICY).digest
    with pytest.raises(ConfigError, match="max_expected_fpir"):
        parse_policy(POLICY.replace("enabled = true", "enabled = true\nmax_expected_fpir = 2"))


def test_a_search_over_the_cap_is_refused_before_the_photo_is_read_and_ledgered(make_engine, lfw) -> None:
    from .conftest import ADMIN, CLERK, consent

    engine = make_engine(POLICY.replace("enabled = true", "enabled = true\nmax_expected_fpir = 0.001"))
    engine.create_gallery(ADMIN, GALLERY)
    for name in ("Aaron_Peirsol", "Padraig_Harrington"):
        consent(engine, name)
        engine.enroll(CLERK, GALLERY, name, [photo(lfw, name, 1)], purpose="access_control")
    authorization(engine)
    probe = photo(lfw, "Aaron_Peirsol", 3)
    points = engine.recognizer.backend.thresholds.points
    assert expected_fpir(point_fmr(points["fmr1e-3"]), 2) > 0.001  # the default point is too loose for the cap
    with pytest.raises(FpirTooHighError) as err:
        engine.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation")
    suggested = err.value.details["suggested_point"]
    assert suggested is not None and expected_fpir(point_fmr(points[suggested]), 2) <= 0.001
    last = LedgerEntry.from_row(list(engine.store.iter_ledger())[-1])
    assert (last.operation, last.outcome, last.result["error"]) == ("identify", "refused", "expected_fpir_too_high")
    assert f"'{suggested}'" in last.result["message"] and not last.inputs  # no photo was read
    result = engine.identify(INVESTIGATOR, GALLERY, probe, purpose="investigation", operating_point=suggested)
    assert result.operating_point == suggested and result.expected_fpir <= 0.001
    last = LedgerEntry.from_row(list(engine.store.iter_ledger())[-1])
    assert (last.outcome, last.result["operating_point"], last.result["max_expected_fpir"]) == ("ok", suggested, 0.001)
