"""Consent records: validation, every refusal reason, withdrawal, storage round trip."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from govhelp import T0
from hypothesis import given
from hypothesis import strategies as st

from faceledger.errors import ConflictError, ConsentRequiredError, InputError
from faceledger.governance.consent import (
    ART9_CONDITIONS,
    ConsentMethod,
    ConsentRecord,
    LegalBasis,
    consent_from_dict,
    require_valid_consent,
    validate_new_consent,
    withdraw,
)

DAY = timedelta(days=1)


def record(**changes: object) -> ConsentRecord:
    base = ConsentRecord(
        id="c1",
        gallery="staff",
        subject_ref="emp-0042",
        notice_version="notice-v3",
        purpose="access_control",
        method=ConsentMethod.SIGNED_FORM,
        given_at=T0,
        collected_by="erin",
        expires_at=T0 + 365 * DAY,
    )
    return replace(base, **changes) if changes else base


def test_a_valid_record_covers_its_purpose_during_its_validity() -> None:
    r = record()
    assert r.legal_basis is LegalBasis.EXPLICIT_CONSENT
    assert require_valid_consent(r, T0 + DAY, "access_control") is r
    assert require_valid_consent([r], T0, "access_control") is r  # given_at is inclusive


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"subject_ref": "  "}, "subject_ref"),
        ({"notice_version": None}, "notice_version"),
        ({"collected_by": ""}, "collected_by"),
        ({"expires_at": T0}, "expires_at"),
        ({"expires_at": T0 - DAY}, "expires_at"),
        ({"withdrawn_at": T0 - DAY}, "withdrawn_at"),
        ({"method": "telepathy"}, "method"),
        ({"legal_basis": "because"}, "legal_basis"),
    ],
)
def test_impossible_records_cannot_be_built(changes: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        record(**changes)
    assert err.value.details.get("field") == field


def test_naive_times_are_refused() -> None:
    with pytest.raises(InputError, match="timezone-aware"):
        record(given_at=datetime(2026, 3, 1, 9, 0))


@pytest.mark.parametrize(
    ("records", "at", "purpose", "reason"),
    [
        (None, T0, "access_control", "none"),
        ([], T0, "access_control", "none"),
        ([record()], T0 + 400 * DAY, "access_control", "expired"),
        ([record()], T0 + 365 * DAY, "access_control", "expired"),  # expires_at is exclusive
        ([record(withdrawn_at=T0 + 10 * DAY)], T0 + 10 * DAY, "access_control", "withdrawn"),
        ([record()], T0 + DAY, "timekeeping", "purpose_mismatch"),
        ([record()], T0 - DAY, "access_control", "not_yet_given"),
    ],
)
def test_every_refusal_reason(records: object, at: datetime, purpose: str, reason: str) -> None:
    with pytest.raises(ConsentRequiredError) as err:
        require_valid_consent(records, at, purpose)
    assert err.value.details["reason"] == reason
    assert err.value.code == "consent_required"


def test_withdrawal_ends_coverage_only_from_its_time() -> None:
    r = withdraw(record(), T0 + 10 * DAY)
    assert require_valid_consent(r, T0 + 9 * DAY, "access_control") is r
    with pytest.raises(ConsentRequiredError, match="withdrawn"):
        require_valid_consent(r, T0 + 11 * DAY, "access_control")
    with pytest.raises(ConflictError):
        withdraw(r, T0 + 12 * DAY)
    with pytest.raises(InputError):
        withdraw(record(), T0 - DAY)


def test_a_renewed_consent_covers_and_the_latest_record_gives_the_reason() -> None:
    old = record(id="old", expires_at=T0 + 30 * DAY)
    new = record(id="new", given_at=T0 + 20 * DAY, expires_at=T0 + 60 * DAY)
    assert require_valid_consent([old, new], T0 + 40 * DAY, "access_control").id == "new"
    assert require_valid_consent([old, new], T0 + 25 * DAY, "access_control").id == "new"
    gone = withdraw(new, T0 + 45 * DAY)
    with pytest.raises(ConsentRequiredError) as err:
        require_valid_consent([old, gone], T0 + 50 * DAY, "access_control")
    assert err.value.details == {"reason": "withdrawn", "consent_id": "new"}


def test_records_of_other_galleries_do_not_count() -> None:
    other = record(gallery="visitors")
    with pytest.raises(ConsentRequiredError) as err:
        require_valid_consent([other], T0 + DAY, "access_control", gallery="staff")
    assert err.value.details["reason"] == "none"
    assert require_valid_consent([other], T0 + DAY, "access_control", gallery="visitors") is other


def test_new_records_are_checked_against_the_clock_and_the_policy() -> None:
    now = T0 + DAY
    validate_new_consent(record(given_at=now + timedelta(minutes=4)), now)  # clock skew tolerated
    with pytest.raises(InputError, match="in the future"):
        validate_new_consent(record(given_at=now + timedelta(hours=1)), now)
    with pytest.raises(InputError, match="has passed"):
        validate_new_consent(record(expires_at=T0 + DAY / 2), now)
    with pytest.raises(InputError, match="already be withdrawn"):
        validate_new_consent(record(withdrawn_at=T0), now)
    contract = record(legal_basis=LegalBasis.CONTRACT)
    with pytest.raises(ConsentRequiredError) as err:
        validate_new_consent(contract, now)
    assert err.value.details["reason"] == "legal_basis"
    assert validate_new_consent(contract, now, legal_bases={LegalBasis.CONTRACT}) is contract


def test_art9_conditions_name_the_special_category_bases_only() -> None:
    assert LegalBasis.EXPLICIT_CONSENT in ART9_CONDITIONS
    assert ART9_CONDITIONS[LegalBasis.EXPLICIT_CONSENT].startswith("Art. 9(2)(a)")
    for art6_only in ("contract", "legal_obligation", "public_interest", "legitimate_interests"):
        assert LegalBasis(art6_only) not in ART9_CONDITIONS


def test_dict_round_trip_through_json() -> None:
    r = record(withdrawn_at=T0 + 5 * DAY, legal_basis=LegalBasis.SUBSTANTIAL_PUBLIC_INTEREST)
    data = json.loads(json.dumps(r.to_dict()))
    assert data["given_at"] == "2026-03-01T09:00:00.000000Z"
    assert data["method"] == "signed_form"
    assert consent_from_dict(data) == r
    with pytest.raises(InputError, match="unknown field"):
        consent_from_dict({**data, "photo": "x"})
    with pytest.raises(InputError, match="missing field"):
        consent_from_dict({k: v for k, v in data.items() if k != "purpose"})


@given(
    given_days=st.integers(-1000, 1000),
    length=st.integers(1, 2000),
    probe=st.integers(-3000, 3000),
)
def test_coverage_is_exactly_the_half_open_validity_window(given_days: int, length: int, probe: int) -> None:
    start = T0 + given_days * DAY
    r = record(given_at=start, expires_at=start + length * DAY)
    at = T0 + probe * DAY
    covered = start <= at < start + length * DAY
    assert (r.status(at, "access_control") is None) == covered
