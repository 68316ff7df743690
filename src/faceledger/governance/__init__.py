"""Accountability rules of FaceLedger, as pure functions over typed records.

No database and no network here: the engine reads records from the store, asks these
modules what the rules say, and writes the effect and its ledger entry in one
transaction. Only :mod:`~faceledger.governance.policy` (the policy file) and
:mod:`~faceledger.governance.checkpoint` (keys and checkpoint files) touch the disk,
through small explicit functions.

============================  =========================================================
module                        what it decides
============================  =========================================================
``roles``                     roles, operations, the default role -> operations table
``policy``                    the deployment policy file; who may do what; limits
``consent``                   consent records and whether one covers a use
``authorization``             authorizations and every precondition of a 1:N search
``builders``                  building new records from requests: times with a zone, subject references, names
``ledger``                    ledger entries, the biometric-data guard, sealing
``verify``                    hash-chain verification and tampering diagnosis (also in processes)
``rowhash``                   fast hashes of stored rows, both storage layouts
``checkpoint``                Ed25519 keys and signed checkpoints (imports cryptography)
``review``                    leads, reviews, the two-reviewer rule, review statistics
``retention``                 which subjects are due for purge, and why
``reports``                   usage reports from the ledger (dict, JSON, Markdown)
``export``                    data-subject access export
============================  =========================================================

The names below are re-exported for convenience; ``checkpoint`` is not (import it
explicitly, it loads ``cryptography``).
"""

from __future__ import annotations

from faceledger.governance.authorization import (
    Authorization,
    AuthorizationKind,
    IdentificationRequest,
    check_identification,
    require_authorization,
)
from faceledger.governance.consent import (
    ConsentMethod,
    ConsentRecord,
    LegalBasis,
    require_valid_consent,
    validate_new_consent,
)
from faceledger.governance.export import subject_export
from faceledger.governance.ledger import ChainHead, EntryDraft, LedgerEntry, entry_fields, refusal_result, seal
from faceledger.governance.policy import Policy, check_operation, check_purpose, load_policy, search_limits
from faceledger.governance.reports import UsageReport, usage_report
from faceledger.governance.retention import RetentionPlan, SubjectInfo, plan_retention
from faceledger.governance.review import Decision, Lead, LeadStatus, Review, add_review
from faceledger.governance.roles import DEFAULT_PERMISSIONS, Operation, Role
from faceledger.governance.verify import ChainReport, ProblemKind, verify_chain, verify_parallel

__all__ = [
    "DEFAULT_PERMISSIONS",
    "Authorization",
    "AuthorizationKind",
    "ChainHead",
    "ChainReport",
    "ConsentMethod",
    "ConsentRecord",
    "Decision",
    "EntryDraft",
    "IdentificationRequest",
    "Lead",
    "LeadStatus",
    "LedgerEntry",
    "LegalBasis",
    "Operation",
    "Policy",
    "ProblemKind",
    "RetentionPlan",
    "Review",
    "Role",
    "SubjectInfo",
    "UsageReport",
    "add_review",
    "check_identification",
    "check_operation",
    "check_purpose",
    "entry_fields",
    "load_policy",
    "plan_retention",
    "refusal_result",
    "require_authorization",
    "require_valid_consent",
    "search_limits",
    "seal",
    "subject_export",
    "usage_report",
    "validate_new_consent",
    "verify_chain",
    "verify_parallel",
]
