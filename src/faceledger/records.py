"""The value types a caller of the :class:`~faceledger.engine.Engine` needs, in one public module.

Adapters (the CLI, the HTTP service) and Python callers import records, their enums and
the results of engine operations from here, never from ``faceledger.governance`` or
``faceledger.store``, whose layout may change. New records are described with
:class:`ConsentRequest` and :class:`AuthorizationRequest` and built by the engine, so
every caller gets the same defaults and the same checks (:mod:`faceledger.governance.builders`):

>>> engine.record_consent(clerk, ConsentRequest(gallery="staff", subject_ref="emp-0042",
...     purpose="access_control", notice_version="v3", method="signed_form"))
>>> engine.record_authorization(admin, AuthorizationRequest(kind="court_order", reference="CASE-1",
...     issuer="District Court", galleries=["staff"], purposes=["investigation"], valid_days=30))
"""

from __future__ import annotations

from faceledger.engine.keys import SERVICE_ACTOR, ApiKey, parse_token
from faceledger.engine.results import Actor, EnrollResult, FaceCandidates, IdentifyResult, LeadCandidateView
from faceledger.governance.authorization import Authorization, AuthorizationKind
from faceledger.governance.builders import (
    AuthorizationRequest,
    ConsentRequest,
    check_actor_id,
    check_names,
    check_subject_ref,
    parse_time,
)
from faceledger.governance.consent import ConsentMethod, ConsentRecord, LegalBasis
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.policy import Policy
from faceledger.governance.reports import UsageReport
from faceledger.governance.retention import RetentionPlan
from faceledger.governance.review import Decision, Lead, LeadStatus, Review
from faceledger.governance.roles import Operation, Role
from faceledger.governance.verify import ChainReport
from faceledger.store.base import Gallery, GalleryStats, Subject

__all__ = [
    "SERVICE_ACTOR",
    "Actor",
    "ApiKey",
    "Authorization",
    "AuthorizationKind",
    "AuthorizationRequest",
    "ChainReport",
    "ConsentMethod",
    "ConsentRecord",
    "ConsentRequest",
    "Decision",
    "EnrollResult",
    "FaceCandidates",
    "Gallery",
    "GalleryStats",
    "IdentifyResult",
    "Lead",
    "LeadCandidateView",
    "LeadStatus",
    "LedgerEntry",
    "LegalBasis",
    "Operation",
    "Policy",
    "RetentionPlan",
    "Review",
    "Role",
    "Subject",
    "UsageReport",
    "check_actor_id",
    "check_names",
    "check_subject_ref",
    "parse_time",
    "parse_token",
]
