"""The closed vocabulary of declared targets: normalisation and every way around it we could think of."""

from __future__ import annotations

import pytest

from faceledger.errors import ConfigError, InputError, ProhibitedUseError, UnknownTargetError
from faceledger.governance.policy import Policy, parse_policy
from faceledger.governance.targets import canonical_term, check_targets, targets_summary

P = Policy.default()

# Every spelling here must land on a prohibited target and be refused as prohibited.
PROHIBITED_SPELLINGS = [
    "protest", "Protest", " protest", "PROTEST ", "protests", "Protests", "lawful-assembly", "lawful assembly",
    "Lawful_Assembly", "lawfulassembly", "lawful  --  assemblies", "religious activity", "religious-activities",
    "Religious_Activity", "pro\u200btest", "\u200dprotest\u2060", "\u202eprotest", "pro\u00adtest",
    "ｐｒｏｔｅｓｔ", "prot\u0435st", "\u0440rotest", "lawful_\u0430ssembly", "religious activit\u0443",
    "pr\u03bftest",
]


@pytest.mark.parametrize("given", PROHIBITED_SPELLINGS)
def test_every_spelling_of_a_prohibited_target_is_refused_as_prohibited(given: str) -> None:
    (target,) = P.resolve_targets([given])
    assert target.prohibited and target.term in {"protest", "lawful_assembly", "religious_activity"}
    with pytest.raises(ProhibitedUseError) as info:
        check_targets([target])
    assert info.value.details["reason"] == "prohibited_target"


@pytest.mark.parametrize("given,term", [
    ("suspect", "suspect"), ("Suspects", "suspect"), (" missing person ", "missing_person"),
    ("Missing-Persons", "missing_person"), ("WITNESSES", "witness"), ("victim\u200b", "victim"),
])
def test_allowed_targets_normalise_to_the_vocabulary(given: str, term: str) -> None:
    assert check_targets(P.resolve_targets([given])) == {term}


@pytest.mark.parametrize("given", [
    "protester", "protest_march", "demonstration", "rally", "s\u0443spect",  # Cyrillic у: never maps onto an allowed
    "suspect\u0301", "", "   ", "x" * 65, "mosque", "☃",
])
def test_anything_outside_the_vocabulary_is_refused(given: str) -> None:
    (target,) = P.resolve_targets([given])
    assert target.term is None and not target.prohibited
    with pytest.raises(UnknownTargetError) as info:
        check_targets([target])
    assert info.value.code == "unknown_target"


def test_a_prohibited_target_wins_over_an_unknown_one_and_the_summary_escapes_what_was_given() -> None:
    targets = P.resolve_targets(["suspect", "rally", "prot\u0435st"])
    with pytest.raises(ProhibitedUseError):
        check_targets(targets)
    summary = targets_summary(targets)
    assert summary == {"given": ["suspect", "rally", "prot\\u0435st"], "normalised": ["suspect", None, "protest"],
                       "prohibited": ["protest"]}


def test_bad_shapes_are_input_errors() -> None:
    with pytest.raises(InputError):
        P.resolve_targets("suspect")
    with pytest.raises(InputError):
        P.resolve_targets([1])
    with pytest.raises(InputError):
        P.resolve_targets(["suspect"] * 17)


def test_the_policy_defines_the_vocabulary() -> None:
    p = parse_policy('[targets]\nallowed = ["employee", "visitor"]\n[prohibited]\ntargets = ["union-activity"]\n')
    assert p.allowed_targets == {"employee", "visitor"}
    assert "union_activity" in p.prohibited_targets and "protest" in p.prohibited_targets
    assert check_targets(p.resolve_targets(["Employees"])) == {"employee"}
    with pytest.raises(UnknownTargetError):
        check_targets(p.resolve_targets(["suspect"]))
    with pytest.raises(ProhibitedUseError):
        check_targets(p.resolve_targets(["Union Activities"]))
    assert p.to_dict()["targets"] == {"allowed": ["employee", "visitor"]}
    with pytest.raises(ConfigError, match="prohibits"):
        parse_policy('[targets]\nallowed = ["protest"]\n')
    with pytest.raises(ConfigError, match="targets.allowed"):
        parse_policy('[targets]\nallowed = []\n')


def test_canonical_term() -> None:
    assert canonical_term("\u202e Lawful\u2014Assembly\u200b ") == "lawful_assembly"
