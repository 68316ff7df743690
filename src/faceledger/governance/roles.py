"""Roles, operations and the default table of who may do what.

Every call into the engine carries an actor and the actor's :class:`Role`; the
engine names the :class:`Operation` it is about to run and asks
:func:`faceledger.governance.policy.check_operation` whether that role may run it.

The defaults follow separation of duties: the person who searches (investigator)
does not review leads (reviewer), does not record the authorization that allows the
search (admin), and does not audit the ledger (auditor). ``admin`` administers the
deployment but cannot enroll, verify or identify. A deployment may override the
operations of any role in its policy file (``[roles]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["DEFAULT_PERMISSIONS", "IMPLIED_OPERATIONS", "UNGATED_OPERATIONS", "Operation", "Role", "with_implied"]


class Role(StrEnum):
    """Who the actor is acting as. Values are the names used in policy files and on the CLI."""

    ADMIN = "admin"
    ENROLLER = "enroller"
    VERIFIER = "verifier"
    INVESTIGATOR = "investigator"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"


class Operation(StrEnum):
    """Everything the engine can be asked to do; each one that runs leaves a ledger entry."""

    # photos and templates
    DETECT = "detect"
    VERIFY = "verify"
    ENROLL = "enroll"
    IDENTIFY = "identify"
    REDACT = "redact"
    # human review of identification leads
    LEAD_LIST = "lead_list"
    LEAD_SHOW = "lead_show"  # a lead's evidence: probe and candidate face crops
    REVIEW = "review"
    # consent, subjects, erasure
    CONSENT_RECORD = "consent_record"
    CONSENT_WITHDRAW = "consent_withdraw"
    CONSENT_LIST = "consent_list"
    SUBJECT_LIST = "subject_list"
    SUBJECT_FACES = "subject_faces"  # a subject's enrolled face crops (each look ledgered)
    ERASE = "erase"
    EXPORT = "export"  # data-subject access export
    RETENTION_RUN = "retention_run"
    # authorizations for 1:N identification
    AUTHORIZATION_RECORD = "authorization_record"
    AUTHORIZATION_REVOKE = "authorization_revoke"
    AUTHORIZATION_LIST = "authorization_list"
    # galleries
    GALLERY_CREATE = "gallery_create"
    GALLERY_DELETE = "gallery_delete"
    GALLERY_LIST = "gallery_list"
    GALLERY_MODEL_CHANGE = "gallery_model_change"  # pin another model: templates deleted, re-enroll
    # deployment
    POLICY_CHANGE = "policy_change"
    POLICY_SHOW = "policy_show"
    KEY_CHANGE = "key_change"  # the checkpoint signing key; in a policy's [roles] it also grants the three below
    KEY_CREATE = "key_create"  # API keys
    KEY_LIST = "key_list"
    KEY_REVOKE = "key_revoke"
    TRAINING_RECORD = "training_record"
    TRAINING_LIST = "training_list"
    # who is acting: only refusals are ledgered (no role held, a role not held, a claimed other name)
    SIGN_IN = "sign_in"
    # the ledger and oversight
    LEDGER_VERIFY = "ledger_verify"
    LEDGER_EXPORT = "ledger_export"
    LEDGER_CHECKPOINT = "ledger_checkpoint"
    REPORT = "report"
    EVALUATE = "evaluate"
    INDEPENDENT_TEST = "independent_test"


_O = Operation
#: Operations no role is granted: they record what happened before any role applied (a refused sign-in).
UNGATED_OPERATIONS = frozenset({_O.SIGN_IN})
_READ_GOVERNANCE = {_O.GALLERY_LIST, _O.SUBJECT_LIST, _O.CONSENT_LIST, _O.AUTHORIZATION_LIST}

#: The default role -> operations table (read-only). Change it per deployment with
#: ``[roles]`` in the policy file; a role named there gets exactly the listed operations.
DEFAULT_PERMISSIONS: Mapping[Role, frozenset[Operation]] = MappingProxyType(
    {
        Role.ADMIN: frozenset(
            _READ_GOVERNANCE
            | {
                _O.GALLERY_CREATE,
                _O.GALLERY_DELETE,
                _O.GALLERY_MODEL_CHANGE,
                _O.POLICY_CHANGE,
                _O.POLICY_SHOW,
                _O.TRAINING_RECORD,
                _O.TRAINING_LIST,
                _O.KEY_CHANGE,
                _O.KEY_CREATE,
                _O.KEY_LIST,
                _O.KEY_REVOKE,
                _O.AUTHORIZATION_RECORD,
                _O.AUTHORIZATION_REVOKE,
                _O.CONSENT_WITHDRAW,
                _O.ERASE,
                _O.EXPORT,
                _O.SUBJECT_FACES,
                _O.RETENTION_RUN,
                _O.LEDGER_CHECKPOINT,
                _O.LEDGER_VERIFY,
                _O.REPORT,
            }
        ),
        Role.ENROLLER: frozenset(
            {
                _O.DETECT,
                _O.REDACT,
                _O.ENROLL,
                _O.CONSENT_RECORD,
                _O.CONSENT_WITHDRAW,
                _O.CONSENT_LIST,
                _O.SUBJECT_LIST,
                _O.SUBJECT_FACES,
                _O.GALLERY_LIST,
            }
        ),
        Role.VERIFIER: frozenset({_O.DETECT, _O.REDACT, _O.VERIFY, _O.GALLERY_LIST}),
        Role.INVESTIGATOR: frozenset(
            {_O.DETECT, _O.REDACT, _O.IDENTIFY, _O.LEAD_LIST, _O.GALLERY_LIST, _O.AUTHORIZATION_LIST}
        ),
        Role.REVIEWER: frozenset({_O.LEAD_LIST, _O.LEAD_SHOW, _O.REVIEW}),
        Role.AUDITOR: frozenset(
            _READ_GOVERNANCE
            | {
                _O.LEAD_LIST,
                _O.POLICY_SHOW,
                _O.TRAINING_LIST,
                _O.LEDGER_VERIFY,
                _O.LEDGER_EXPORT,
                _O.REPORT,
                _O.EVALUATE,
                _O.INDEPENDENT_TEST,
            }
        ),
    }
)


#: Operations a policy grants by naming another: ``key_change`` once covered API keys too, so a
#: policy written then (``admin = ["key_change", ...]``) keeps meaning what it meant.
IMPLIED_OPERATIONS: Mapping[Operation, frozenset[Operation]] = MappingProxyType(
    {_O.KEY_CHANGE: frozenset({_O.KEY_CREATE, _O.KEY_LIST, _O.KEY_REVOKE})}
)


def with_implied(operations: frozenset[Operation] | set[Operation]) -> frozenset[Operation]:
    """``operations`` plus those they imply (:data:`IMPLIED_OPERATIONS`)."""
    out = set(operations)
    for op in operations:
        out |= IMPLIED_OPERATIONS.get(op, frozenset())
    return frozenset(out)
