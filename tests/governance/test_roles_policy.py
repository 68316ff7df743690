"""Roles, the default permissions, and the policy file: defaults, loading, validation, digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from govhelp import policy

from faceledger.errors import ConfigError, InputError, PermissionDeniedError, PurposeNotAllowedError
from faceledger.governance.consent import LegalBasis
from faceledger.governance.policy import (
    DEFAULT_PROHIBITED_TARGETS,
    Policy,
    check_operation,
    check_purpose,
    load_policy,
    parse_policy,
    search_limits,
)
from faceledger.governance.roles import DEFAULT_PERMISSIONS, UNGATED_OPERATIONS, Operation, Role

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def test_default_policy_is_safe() -> None:
    p = Policy.default()
    assert p.identification.enabled is False
    assert p.identification.live_allowed is False
    assert p.required_reviewers == 1
    assert p.prohibited_targets == {"lawful_assembly", "protest", "religious_activity"}
    assert p.legal_bases == {LegalBasis.EXPLICIT_CONSENT}
    assert p.permissions == DEFAULT_PERMISSIONS


def test_every_role_has_a_default_and_every_operation_someone() -> None:
    assert set(DEFAULT_PERMISSIONS) == set(Role)
    granted = set().union(*DEFAULT_PERMISSIONS.values())
    assert granted == set(Operation) - UNGATED_OPERATIONS


@pytest.mark.parametrize(
    ("role", "operation"),
    [
        (Role.INVESTIGATOR, Operation.REVIEW),  # the searcher does not review
        (Role.REVIEWER, Operation.IDENTIFY),
        (Role.ADMIN, Operation.IDENTIFY),  # administration is not investigation
        (Role.ADMIN, Operation.ENROLL),
        (Role.INVESTIGATOR, Operation.AUTHORIZATION_RECORD),  # nobody authorizes their own searches
        (Role.AUDITOR, Operation.ERASE),  # auditors read, they do not change
        (Role.VERIFIER, Operation.IDENTIFY),
        (Role.ENROLLER, Operation.IDENTIFY),
    ],
)
def test_separation_of_duties_in_defaults(role: Role, operation: Operation) -> None:
    with pytest.raises(PermissionDeniedError) as err:
        check_operation(Policy.default(), role, operation)
    assert err.value.details == {"role": role.value, "operation": operation.value}


def test_allowed_operation_passes_and_strings_are_accepted() -> None:
    check_operation(Policy.default(), "investigator", "identify")
    check_operation(Policy.default(), Role.REVIEWER, Operation.REVIEW)


def test_unknown_role_is_denied_and_unknown_operation_is_a_caller_bug() -> None:
    with pytest.raises(PermissionDeniedError, match="unknown role 'root'"):
        check_operation(Policy.default(), "root", "detect")
    with pytest.raises(InputError, match="unknown operation"):
        check_operation(Policy.default(), "admin", "launch")


def test_purpose_must_be_declared_and_allowed() -> None:
    p = policy(purposes={"allowed": ["access_control"]})
    assert check_purpose(p, "access_control") == "access_control"
    with pytest.raises(PurposeNotAllowedError, match="must be declared"):
        check_purpose(p, None)
    with pytest.raises(PurposeNotAllowedError, match="'marketing' is not allowed"):
        check_purpose(p, "marketing")


def test_example_policy_file_loads_with_its_values() -> None:
    p = load_policy(EXAMPLE)
    assert p.organisation == "Example Municipal Library"
    assert p.purposes == {"access_control", "missing_person"}
    assert p.identification.enabled and not p.identification.live_allowed
    assert (p.limits.max_candidates, p.limits.min_threshold) == (5, 0.40)
    assert p.limits.max_searches_per_actor_per_hour == 20
    assert p.required_reviewers == 2
    assert p.retention_days_for("visitors") == 30
    assert p.retention_days_for("anything-else") == 365
    assert p.prohibited_targets == DEFAULT_PROHIBITED_TARGETS | {"union_activity", "political_rally"}
    assert Operation.REDACT not in p.permissions[Role.VERIFIER]
    assert Operation.INDEPENDENT_TEST in p.permissions[Role.AUDITOR]
    assert p.permissions[Role.INVESTIGATOR] == DEFAULT_PERMISSIONS[Role.INVESTIGATOR]
    assert p.source == str(EXAMPLE)


def test_digest_ignores_layout_and_follows_content() -> None:
    a = parse_policy("[limits]\nmax_candidates = 5\n")
    b = parse_policy("# a comment\n\n[limits]\n  max_candidates   =   5  # five\n")
    c = parse_policy("[limits]\nmax_candidates = 6\n")
    assert a.digest == b.digest != c.digest
    assert len(a.digest) == 64 and int(a.digest, 16) >= 0
    assert Policy.default().digest == parse_policy("").digest


def test_role_override_replaces_only_that_role() -> None:
    p = policy(roles={"reviewer": ["review"]})
    assert p.permissions[Role.REVIEWER] == {Operation.REVIEW}
    assert p.permissions[Role.ADMIN] == DEFAULT_PERMISSIONS[Role.ADMIN]
    empty = policy(roles={"verifier": []})
    with pytest.raises(PermissionDeniedError):
        check_operation(empty, "verifier", "verify")


def test_prohibited_targets_extend_and_never_shrink() -> None:
    p = policy(prohibited={"targets": ["strike"]})
    assert p.prohibited_targets == DEFAULT_PROHIBITED_TARGETS | {"strike"}


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[identification]\nenabled = "yes"\n', "identification.enabled", "true or false"),
        ('[limits]\nmax_candidates = "10"\n', "limits.max_candidates", "must be an integer"),
        ("[limits]\nmax_candidates = 1.5\n", "limits.max_candidates", "must be an integer"),
        ("[limits]\nmax_candidates = 0\n", "limits.max_candidates", "between 1 and 1000"),
        ("[limits]\nmin_threshold = 2.0\n", "limits.min_threshold", "between -1.0 and 1.0"),
        ("[limits]\nmin_threshold = nan\n", "limits.min_threshold", "must be a number"),
        ("[limits]\nmax_searches_per_actor_per_hour = true\n", "limits.max_searches", "integer"),
        ("[review]\nrequired_reviewers = 3\n", "review.required_reviewers", "between 1 and 2"),
        ("[retention]\ndefault_days = 0\n", "retention.default_days", "between 1"),
        ('[retention.galleries]\nstaff = "30"\n', "retention.galleries.staff", "integer"),
        ('[purposes]\nallowed = "access_control"\n', "purposes.allowed", "list of strings"),
        ("[purposes]\nallowed = []\n", "purposes.allowed", "must not be empty"),
        ('[purposes]\nallowed = ["Access Control"]\n', "purposes.allowed", "lower-case"),
        ('[organisation]\nname = ""\n', "organisation.name", "non-empty string"),
        ("organisation = 3\n", "organisation", "must be a table"),
        ('[prohibited]\ntargets = "protest"\n', "prohibited.targets", "list of strings"),
    ],
)
def test_bad_types_and_ranges_name_the_key(text: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(text, source="site.toml")
    message = str(err.value)
    assert message.startswith("site.toml: ")
    assert key in message and problem in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "[limits]\nmax_candidate = 5\n",
            "limits.max_candidate is not a known key; did you mean 'max_candidates'",
        ),
        (
            "[identification]\nenable = true\n",
            "identification.enable is not a known key; did you mean 'enabled'",
        ),
        ("[sharing]\nenabled = true\n", "sharing is not a known key"),
        ("colour = 'blue'\n", "colour is not a known key"),
        ('[roles]\ninvestigatr = ["identify"]\n', "unknown role 'investigatr'; did you mean 'investigator'"),
        ('[roles]\nauditor = ["ledger_verfy"]\n', "roles.auditor has unknown operation 'ledger_verfy'"),
        ('[consent]\nlegal_bases = ["consent"]\n', "consent.legal_bases has unknown value 'consent'"),
        ("[identification]\nlive_allowed = true\n", "needs identification.enabled = true"),
        ("version = 2\n", "version 2 is not supported"),
        ("[limits\n", "not valid TOML"),
    ],
)
def test_unknown_keys_roles_and_inconsistencies_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(text, source="site.toml")
    assert fragment in str(err.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.toml")


def test_search_limits_can_tighten_but_never_loosen() -> None:
    p = policy(identification={"enabled": True}, limits={"max_candidates": 5, "min_threshold": 0.45})
    assert search_limits(p, calibrated_threshold=0.36) == search_limits(p, 0.36, top_k=50)
    limits = search_limits(p, 0.36)
    assert (limits.top_k, limits.threshold) == (5, 0.45)
    assert search_limits(p, 0.36, top_k=2, threshold=0.6).threshold == 0.6
    assert search_limits(p, 0.36, top_k=2, threshold=0.1).threshold == 0.45
    assert search_limits(Policy.default(), 0.36, threshold=0.2).threshold == 0.2
    with pytest.raises(InputError):
        search_limits(p, 0.36, top_k=0)
