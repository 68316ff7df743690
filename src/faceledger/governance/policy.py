"""The deployment policy: what this installation allows, loaded from a TOML file.

A policy is validated once, at start-up, with errors that name the key and the
problem (:class:`~faceledger.errors.ConfigError`). :meth:`Policy.default` is the safe
policy used when no file is given: 1:N identification off, live identification off,
one reviewer, a one-year retention period.

The file layout (every table and key is optional; see ``examples/policy.toml``)::

    version = 1
    [organisation]    name, complaint_channel
    [purposes]        allowed = ["access_control", ...]
    [identification]  enabled = false, live_allowed = false, max_expected_fpir (unset: no cap)
    [limits]          max_candidates, min_threshold, max_searches_per_actor_per_hour
    [review]          required_reviewers = 1 | 2, evidence_days (probe crops kept after a lead is decided)
    [targets]         allowed = [...]   (what a search may declare it is aimed at: the closed vocabulary)
    [retention]       default_days; [retention.galleries] <gallery> = <days>
    [prohibited]      targets = [...]   (added to lawful_assembly, protest, religious_activity)
    [consent]         legal_bases = ["explicit_consent", ...]
    [roles]           <role> = [<operation>, ...]   (replaces that role's default operations)
    [operators]       <OS user> = [<role>, ...]     (who may use the CLI, in which roles)
    [training]        required_for = [<role>, ...]  (roles that need a current training record)

:attr:`Policy.digest` is the SHA-256 of the policy's canonical content (not of the
file's text, so comments and layout do not change it); every ledger entry records
the digest of the policy in force.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from faceledger import tomlfile
from faceledger.core.chain import canonical_json
from faceledger.errors import ConfigError, InputError, PermissionDeniedError, PurposeNotAllowedError
from faceledger.governance.consent import LegalBasis
from faceledger.governance.roles import DEFAULT_PERMISSIONS, Operation, Role, with_implied
from faceledger.governance.targets import (
    DEFAULT_ALLOWED_TARGETS,
    DEFAULT_PROHIBITED_TARGETS,
    Target,
    canonical_term,
    resolve_targets,
)

__all__ = [
    "DEFAULT_ALLOWED_TARGETS",
    "DEFAULT_PROHIBITED_TARGETS",
    "IdentificationPolicy",
    "Limits",
    "Policy",
    "SearchLimits",
    "check_operation",
    "check_purpose",
    "load_policy",
    "parse_policy",
    "policy_from_dict",
    "search_limits",
]

POLICY_VERSION = 1
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class IdentificationPolicy:
    """Whether 1:N identification may run at all, and on live streams.

    ``max_expected_fpir``: the highest expected false-positive identification rate a
    search may run at, ``1 - (1 - FMR) ** subjects`` (:mod:`.fpir`); ``None``: no cap.
    """

    enabled: bool = False
    live_allowed: bool = False
    max_expected_fpir: float | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on identification.

    ``max_candidates``: most candidates a search may return. ``min_threshold``: a
    cosine-similarity floor in [-1, 1] below which no candidate is returned, whatever
    the caller asks (``None``: the model's calibrated threshold is the floor).
    ``max_searches_per_actor_per_hour``: identification searches one actor may run in
    any sliding hour.
    """

    max_candidates: int = 10
    min_threshold: float | None = None
    max_searches_per_actor_per_hour: int = 30


@dataclass(frozen=True)
class Policy:
    """A validated deployment policy. Build it with :func:`load_policy` or :meth:`default`."""

    organisation: str = "FaceLedger deployment"
    complaint_channel: str | None = None
    purposes: frozenset[str] = frozenset({"access_control"})
    identification: IdentificationPolicy = IdentificationPolicy()
    limits: Limits = Limits()
    required_reviewers: int = 1
    evidence_days: int = 30
    retention_days: int = 365
    gallery_retention_days: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    prohibited_targets: frozenset[str] = DEFAULT_PROHIBITED_TARGETS
    allowed_targets: frozenset[str] = DEFAULT_ALLOWED_TARGETS
    training_required_for: frozenset[Role] = frozenset()
    legal_bases: frozenset[LegalBasis] = frozenset({LegalBasis.EXPLICIT_CONSENT})
    permissions: Mapping[Role, frozenset[Operation]] = field(default_factory=lambda: DEFAULT_PERMISSIONS)
    #: OS user -> roles that user holds on the CLI; ``None``: no ``[operators]`` table (the
    #: bootstrap rule of :mod:`faceledger.engine.identity` applies).
    operators: Mapping[str, frozenset[Role]] | None = None
    source: str = field(default="<default>", compare=False)

    @classmethod
    def default(cls) -> Policy:
        """The safe policy: identification and live identification off, defaults everywhere."""
        return cls()

    def allows(self, role: Role, operation: Operation) -> bool:
        """Whether ``role`` may run ``operation`` under this policy."""
        return operation in self.permissions.get(role, frozenset())

    def resolve_targets(self, given: Any) -> tuple[Target, ...]:
        """Declared targets normalised against this policy's vocabulary (see :mod:`.targets`)."""
        return resolve_targets(given, self.allowed_targets, self.prohibited_targets)

    def retention_days_for(self, gallery: str) -> int:
        """The retention period of ``gallery`` in days (its override, else the default)."""
        return self.gallery_retention_days.get(gallery, self.retention_days)

    def to_dict(self) -> dict[str, Any]:
        """The canonical content, laid out like the TOML file (lists sorted, defaults filled in;
        ``operators`` only when the policy has that table, so older policies keep their digest)."""
        out = {
            "version": POLICY_VERSION,
            "organisation": {"name": self.organisation, "complaint_channel": self.complaint_channel},
            "purposes": {"allowed": sorted(self.purposes)},
            "identification": {
                "enabled": self.identification.enabled,
                "live_allowed": self.identification.live_allowed,
                # only when set, so the digests of policies without a cap stay what they were
                **({} if self.identification.max_expected_fpir is None
                   else {"max_expected_fpir": self.identification.max_expected_fpir}),
            },
            "limits": {
                "max_candidates": self.limits.max_candidates,
                "min_threshold": self.limits.min_threshold,
                "max_searches_per_actor_per_hour": self.limits.max_searches_per_actor_per_hour,
            },
            "review": {"required_reviewers": self.required_reviewers, "evidence_days": self.evidence_days},
            "retention": {
                "default_days": self.retention_days,
                "galleries": dict(self.gallery_retention_days),
            },
            "prohibited": {"targets": sorted(self.prohibited_targets)},
            "targets": {"allowed": sorted(self.allowed_targets)},
            "training": {"required_for": sorted(r.value for r in self.training_required_for)},
            "consent": {"legal_bases": sorted(b.value for b in self.legal_bases)},
            "roles": {r.value: sorted(o.value for o in ops) for r, ops in self.permissions.items()},
        }
        if self.operators is not None:
            out["operators"] = {user: sorted(r.value for r in roles) for user, roles in self.operators.items()}
        return out

    @cached_property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical content: which policy was in force, for the ledger."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """What one identification search may return: at most ``top_k`` candidates scoring ``>= threshold``."""

    top_k: int
    threshold: float


def check_operation(policy: Policy, role: Role | str, operation: Operation | str) -> None:
    """Raise :class:`PermissionDeniedError` unless ``role`` may run ``operation``.

    An unknown role has no permissions; an unknown operation is a caller bug
    (:class:`InputError`).
    """
    try:
        op = Operation(operation)
    except ValueError:
        raise InputError(f"unknown operation {operation!r}") from None
    try:
        r = Role(role)
    except ValueError:
        raise PermissionDeniedError(
            f"unknown role {role!r} may not run '{op}'", role=str(role), operation=op.value
        ) from None
    if not policy.allows(r, op):
        raise PermissionDeniedError(
            f"role '{r}' may not run '{op}' under this policy", role=r.value, operation=op.value
        )


def check_purpose(policy: Policy, purpose: str | None) -> str:
    """Return ``purpose`` if the policy allows it, else raise :class:`PurposeNotAllowedError`."""
    if not purpose:
        raise PurposeNotAllowedError("a purpose must be declared for this operation", purpose=None)
    if purpose not in policy.purposes:
        allowed = ", ".join(sorted(policy.purposes))
        raise PurposeNotAllowedError(
            f"purpose '{purpose}' is not allowed by the policy (allowed: {allowed})", purpose=purpose
        )
    return purpose


def search_limits(
    policy: Policy, calibrated_threshold: float, top_k: int | None = None, threshold: float | None = None
) -> SearchLimits:
    """The limits one search runs under.

    ``top_k`` is capped at ``limits.max_candidates`` (default: that maximum).
    The threshold is the caller's (default: ``calibrated_threshold``) raised to
    ``limits.min_threshold`` when it is lower: a caller can be stricter than the
    policy, never looser.
    """
    cap = policy.limits.max_candidates
    if top_k is not None and top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    floor = policy.limits.min_threshold
    chosen = calibrated_threshold if threshold is None else threshold
    if floor is not None:
        chosen = max(chosen, floor)
    return SearchLimits(top_k=min(top_k or cap, cap), threshold=float(chosen))


# -- loading ------------------------------------------------------------------------------------------


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; every problem raises :class:`ConfigError` naming file and key."""
    path = Path(path)
    return parse_policy(tomlfile.read_text(path, "policy file"), source=str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate policy TOML text (see the module docstring for the layout)."""
    return policy_from_dict(tomlfile.parse(text, "policy", source), source)


def policy_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Policy:
    """Validate an already-parsed policy (the TOML layout) and build a :class:`Policy`."""
    top = _Table(data, "", source)
    version = top.integer("version", POLICY_VERSION, minimum=1)
    if version != POLICY_VERSION:
        raise ConfigError(f"{source}: version {version} is not supported (this FaceLedger reads {POLICY_VERSION})")
    org = top.table("organisation")
    purposes = top.table("purposes")
    ident = top.table("identification")
    limits = top.table("limits")
    review = top.table("review")
    retention = top.table("retention")
    prohibited = top.table("prohibited")
    consent = top.table("consent")
    roles = top.table("roles")
    operators = _operators(top.table("operators")) if "operators" in data else None
    targets = top.table("targets")
    training = top.table("training")
    top.finish()

    identification = IdentificationPolicy(
        enabled=ident.boolean("enabled", False), live_allowed=ident.boolean("live_allowed", False),
        max_expected_fpir=ident.number("max_expected_fpir", None, 1e-9, 1.0),
    )
    if identification.live_allowed and not identification.enabled:
        raise ConfigError(f"{source}: identification.live_allowed = true needs identification.enabled = true")
    min_threshold = limits.number("min_threshold", None, -1.0, 1.0)
    banned = DEFAULT_PROHIBITED_TARGETS | {canonical_term(t) for t in prohibited.names("targets", [])}
    default, default_limits = Policy(), Limits()
    policy = Policy(
        organisation=org.string("name", default.organisation),
        complaint_channel=org.string("complaint_channel", None),
        purposes=frozenset(purposes.names("allowed", sorted(default.purposes), allow_empty=False)),
        identification=identification,
        limits=Limits(
            max_candidates=limits.integer("max_candidates", default_limits.max_candidates, 1, 1000),
            min_threshold=min_threshold,
            max_searches_per_actor_per_hour=limits.integer(
                "max_searches_per_actor_per_hour", default_limits.max_searches_per_actor_per_hour, 1, 100_000
            ),
        ),
        required_reviewers=review.integer("required_reviewers", 1, 1, 2),
        evidence_days=review.integer("evidence_days", default.evidence_days, 0, 3650),
        retention_days=retention.integer("default_days", default.retention_days, 1, 36_500),
        gallery_retention_days=MappingProxyType(_gallery_days(retention.table("galleries"))),
        prohibited_targets=banned,
        allowed_targets=_vocabulary(targets, "allowed", sorted(DEFAULT_ALLOWED_TARGETS), banned),
        training_required_for=frozenset(training.choice("required_for", r, Role, what="role")
                                        for r in training.strings("required_for", [], allow_empty=True)),
        legal_bases=frozenset(_legal_bases(consent)),
        permissions=MappingProxyType(_permissions(roles)),
        operators=None if operators is None else MappingProxyType(operators),
        source=source,
    )
    for t in (org, purposes, ident, limits, review, retention, prohibited, consent, targets, training):
        t.finish()
    return policy


def _vocabulary(table: _Table, key: str, default: list[str], banned: frozenset[str]) -> frozenset[str]:
    terms = {canonical_term(t) for t in table.names(key, default, allow_empty=False)}
    clash = sorted(terms & banned)
    if clash:
        raise table.fail(key, f"has {', '.join(clash)}, which the policy prohibits")
    return frozenset(terms)


def _gallery_days(table: _Table) -> dict[str, int]:
    days = {name: table.integer(name, 0, 1, 36_500) for name in list(table.data)}
    table.finish()
    return days


def _legal_bases(table: _Table) -> list[LegalBasis]:
    names = table.strings("legal_bases", [LegalBasis.EXPLICIT_CONSENT.value], allow_empty=False)
    return [table.choice("legal_bases", n, LegalBasis) for n in names]


_OS_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


def _operators(table: _Table) -> dict[str, frozenset[Role]]:
    out = {}
    for user in list(table.data):
        if not _OS_USER.match(str(user)):
            raise table.fail(str(user), "is not an operating-system user name (letters, digits, '_', '.', '@', '-')")
        names = table.strings(user, [], allow_empty=True)
        out[user] = frozenset(table.choice(user, n, Role, what="role") for n in names)
    table.finish()
    return out


def _permissions(table: _Table) -> dict[Role, frozenset[Operation]]:
    perms = dict(DEFAULT_PERMISSIONS)
    for name in list(table.data):
        role = table.choice("", name, Role, what="role")
        ops = table.strings(name, [], allow_empty=True)
        perms[role] = with_implied({table.choice(name, op, Operation, what="operation") for op in ops})
    table.finish()
    return perms


class _Table:
    """One TOML table being validated: typed getters that name the key, then :meth:`finish`."""

    def __init__(self, data: Any, path: str, source: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: [{path}] must be a table, got {_kind(data)}")
        self.data, self.path, self.source = data, path, source
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self._key(key)} {problem}", key=self._key(key))

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def table(self, key: str) -> _Table:
        value = self._get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table, got {_kind(value)}")
        return _Table(value or {}, self._key(key), self.source)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if type(value) is not bool:
            raise self.fail(key, f"must be true or false, got {_kind(value)} {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self._get(key)
        if value is None:
            return default
        if type(value) is not int:
            raise self.fail(key, f"must be an integer, got {_kind(value)} {value!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.fail(key, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def number(self, key: str, default: float | None, minimum: float, maximum: float) -> float | None:
        value = self._get(key)
        if value is None:
            return default
        if type(value) not in (int, float) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, got {_kind(value)} {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"must be between {minimum} and {maximum}, got {value}")
        return float(value)

    def string(self, key: str, default: str | None) -> str | None:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {_kind(value)} {value!r}")
        return value.strip()

    def strings(self, key: str, default: list[str], allow_empty: bool) -> list[str]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"must be a list of strings, got {_kind(value)} {value!r}")
        if not value and not allow_empty:
            raise self.fail(key, "must not be empty")
        return value

    def names(self, key: str, default: list[str], allow_empty: bool = True) -> list[str]:
        values = self.strings(key, default, allow_empty)
        for v in values:
            if not _NAME.match(v):
                raise self.fail(key, f"has {v!r}: names are lower-case letters, digits, '_' or '-'")
        return values

    def choice(self, key: str, value: str, enum: type, what: str = "value") -> Any:
        try:
            return enum(value)
        except ValueError:
            known = [m.value for m in enum]
            hint = get_close_matches(value, known, n=1)
            did = f"; did you mean '{hint[0]}'?" if hint else f" (known: {', '.join(known)})"
            where = self._key(key) if key else self.path
            raise ConfigError(f"{self.source}: {where} has unknown {what} {value!r}{did}", key=where) from None

    def finish(self) -> None:
        """Refuse keys nobody read: a misspelt key must not silently fall back to a default."""
        for key in self.data:
            if key not in self.used:
                hint = get_close_matches(str(key), sorted(self.used), n=1)
                did = f"; did you mean '{hint[0]}'?" if hint else ""
                raise self.fail(str(key), f"is not a known key{did}")


def _kind(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list"}.get(
        type(value), "table" if isinstance(value, Mapping) else type(value).__name__
    )
