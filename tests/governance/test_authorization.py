"""Authorizations and the preconditions of a 1:N search, in their documented order."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from govhelp import T0, chain, policy

from faceledger.errors import (
    AuthorizationRequiredError,
    ConflictError,
    IdentificationDisabledError,
    InputError,
    PermissionDeniedError,
    ProhibitedUseError,
    PurposeNotAllowedError,
    RateLimitedError,
    RefusedError,
)
from faceledger.governance.authorization import (
    Authorization,
    AuthorizationKind,
    IdentificationRequest,
    authorization_from_dict,
    check_identification,
    count_recent_searches,
    require_authorization,
    revoke,
)
from faceledger.governance.policy import Policy

DAY = timedelta(days=1)
OPEN = policy(
    purposes={"allowed": ["missing_person", "access_control"]},
    identification={"enabled": True, "live_allowed": True},
    limits={"max_searches_per_actor_per_hour": 3},
    prohibited={"targets": ["strike"]},
)


def order(**changes: object) -> Authorization:
    base = Authorization(
        id="a1",
        kind=AuthorizationKind.MISSING_PERSON,
        reference="MP-2026-7",
        issuer="County Police",
        galleries=frozenset({"staff"}),
        purposes=frozenset({"missing_person"}),
        valid_from=T0,
        valid_until=T0 + 30 * DAY,
        recorded_by="adam",
    )
    return replace(base, **changes) if changes else base


def request(**changes: object) -> IdentificationRequest:
    base = IdentificationRequest(
        actor="ines", role="investigator", gallery="staff", purpose="missing_person", at=T0 + DAY
    )
    return replace(base, **changes) if changes else base


@pytest.mark.parametrize(
    ("auths", "at", "gallery", "purpose", "reason"),
    [
        (None, T0 + DAY, "staff", "missing_person", "none"),
        ([], T0 + DAY, "staff", "missing_person", "none"),
        ([order()], T0 + 31 * DAY, "staff", "missing_person", "expired"),
        ([order()], T0 + 30 * DAY, "staff", "missing_person", "expired"),  # valid_until is exclusive
        ([order()], T0 - DAY, "staff", "missing_person", "not_yet_valid"),
        ([order(revoked_at=T0 + 2 * DAY)], T0 + 3 * DAY, "staff", "missing_person", "revoked"),
        ([order()], T0 + DAY, "visitors", "missing_person", "gallery_out_of_scope"),
        ([order()], T0 + DAY, "staff", "access_control", "purpose_out_of_scope"),
    ],
)
def test_every_authorization_refusal(auths: object, at: datetime, gallery: str, purpose: str, reason: str) -> None:
    with pytest.raises(AuthorizationRequiredError) as err:
        require_authorization(auths, gallery, purpose, at)
    assert err.value.details["reason"] == reason


def test_valid_from_is_inclusive_and_a_valid_order_is_returned() -> None:
    a = order()
    assert require_authorization(a, "staff", "missing_person", T0) is a


def test_the_closest_authorization_explains_the_refusal() -> None:
    expired_in_scope = order(id="a-old", valid_until=T0 + DAY)
    other_gallery = order(id="a-vis", galleries=frozenset({"visitors"}), valid_until=T0 + 90 * DAY)
    with pytest.raises(AuthorizationRequiredError) as err:
        require_authorization([other_gallery, expired_in_scope], "staff", "missing_person", T0 + 2 * DAY)
    assert err.value.details == {"reason": "expired", "authorization_id": "a-old"}


def test_among_valid_authorizations_the_longest_lasting_is_used() -> None:
    short, long_ = order(id="s", valid_until=T0 + 2 * DAY), order(id="l", valid_until=T0 + 9 * DAY)
    assert require_authorization([short, long_], "staff", "missing_person", T0 + DAY).id == "l"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reference": ""}, "reference"),
        ({"kind": "gut_feeling"}, "kind"),
        ({"galleries": frozenset()}, "galleries"),
        ({"galleries": "staff"}, "galleries"),
        ({"purposes": [""]}, "purposes"),
        ({"valid_until": T0}, "valid_until"),
        ({"live_allowed": "yes"}, "live_allowed"),
    ],
)
def test_malformed_authorizations_cannot_be_built(changes: dict, field: str) -> None:
    with pytest.raises(InputError) as err:
        order(**changes)
    assert err.value.details["field"] == field


def test_revocation_and_round_trip() -> None:
    a = revoke(order(), T0 + 2 * DAY)
    with pytest.raises(ConflictError):
        revoke(a, T0 + 3 * DAY)
    data = json.loads(json.dumps(a.to_dict()))
    assert data["galleries"] == ["staff"] and data["kind"] == "missing_person"
    assert authorization_from_dict(data) == a
    with pytest.raises(InputError):
        authorization_from_dict({**data, "scope": "everything"})


def test_all_preconditions_met_returns_the_authorization() -> None:
    a = order()
    assert check_identification(OPEN, request(recent_searches=2), [a]) is a


@pytest.mark.parametrize(
    ("pol", "req", "auths", "error", "reason"),
    [
        # 1. role first: a verifier is refused even where identification is off
        (Policy.default(), request(role="verifier"), [order()], PermissionDeniedError, None),
        (OPEN, request(role="reviewer"), [order()], PermissionDeniedError, None),
        # 2. identification disabled (the default policy)
        (Policy.default(), request(), [order()], IdentificationDisabledError, None),
        # 3. purpose
        (OPEN, request(purpose="marketing"), [order()], PurposeNotAllowedError, None),
        (OPEN, request(purpose=None), [order()], PurposeNotAllowedError, None),
        # 4. prohibited targets, before any authorization is looked at
        (OPEN, request(flags=frozenset({"protest"})), [order()], ProhibitedUseError, "prohibited_target"),
        (OPEN, request(flags=frozenset({"lawful_assembly"})), None, ProhibitedUseError, "prohibited_target"),
        (
            OPEN,
            request(flags=frozenset({"religious_activity"})),
            None,
            ProhibitedUseError,
            "prohibited_target",
        ),
        (OPEN, request(flags=frozenset({"strike"})), None, ProhibitedUseError, "prohibited_target"),
        # 5. live needs the policy...
        (
            policy(purposes={"allowed": ["missing_person"]}, identification={"enabled": True}),
            request(live=True),
            [order(live_allowed=True)],
            ProhibitedUseError,
            "live_not_allowed",
        ),
        # 6. ...and an authorization that allows it; then validity and scope
        (OPEN, request(live=True), [order()], ProhibitedUseError, "live_not_authorized"),
        (OPEN, request(), None, AuthorizationRequiredError, "none"),
        (OPEN, request(at=T0 + 40 * DAY), [order()], AuthorizationRequiredError, "expired"),
        (OPEN, request(at=T0 - DAY), [order()], AuthorizationRequiredError, "not_yet_valid"),
        (OPEN, request(gallery="visitors"), [order()], AuthorizationRequiredError, "gallery_out_of_scope"),
        (
            OPEN,
            request(purpose="access_control"),
            [order()],
            AuthorizationRequiredError,
            "purpose_out_of_scope",
        ),
        # 7. rate limit last
        (OPEN, request(recent_searches=3), [order()], RateLimitedError, None),
    ],
)
def test_every_identification_refusal_in_order(
    pol: Policy, req: IdentificationRequest, auths: object, error: type[RefusedError], reason: str | None
) -> None:
    with pytest.raises(error) as err:
        check_identification(pol, req, auths)
    assert err.value.details.get("reason") == reason


def test_live_search_with_policy_and_authorization_passes() -> None:
    live = order(live_allowed=True)
    assert check_identification(OPEN, request(live=True), [order(), live]) is live


def test_rate_limit_reports_the_numbers() -> None:
    with pytest.raises(RateLimitedError) as err:
        check_identification(OPEN, request(recent_searches=7), [order()])
    assert err.value.details == {"limit": 3, "recent": 7}
    assert "ines" in str(err.value)


def test_recent_searches_count_successful_searches_of_that_actor_in_the_last_hour() -> None:
    entries = chain(20)  # ines searches at minutes 0, 5, 10, 15; vera is refused at 2, 7, 12, 17
    assert count_recent_searches(entries, "ines", T0 + timedelta(minutes=15)) == 4
    assert (
        count_recent_searches([e.to_row() for e in entries], "ines", T0 + timedelta(minutes=65)) == 2
    )  # minutes 10 and 15
    assert count_recent_searches(entries, "ines", T0 + timedelta(minutes=60)) == 3  # minute 0 is an hour ago
    assert count_recent_searches(entries, "vera", T0 + timedelta(minutes=20)) == 0
