"""Usage reports from the ledger, and the data-subject access export."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from govhelp import T0, chain, policy

from faceledger.errors import InputError
from faceledger.governance.consent import ConsentMethod, ConsentRecord
from faceledger.governance.export import OTHER_SUBJECT, subject_export
from faceledger.governance.ledger import LedgerEntry
from faceledger.governance.reports import usage_report

MINUTE = timedelta(minutes=1)


def test_counts_by_operation_purpose_actor_authorization_and_outcome() -> None:
    entries = chain(20)  # five kinds in turn: identify, verify, refused identify, review, erase
    report = usage_report(entries, T0, T0 + 20 * MINUTE, organisation="Example Library")
    assert report.entries == 20
    assert report.by_operation == {"erase": 4, "identify": 8, "review": 4, "verify": 4}
    assert report.by_outcome == {"ok": 16, "refused": 4}
    assert report.by_purpose == {"(none)": 12, "access_control": 4, "missing_person": 4}
    assert report.by_actor == {"adam": 4, "ines": 4, "rita": 4, "vera": 8}
    assert report.by_authorization == {"MP-2026-7": 4}
    assert report.refusals == {"permission_denied": 4}
    assert report.erasures == {"consent_withdrawn": 4}
    assert report.identifications == {"refused": 4, "searches": 4, "with candidates": 4}
    assert report.review_decisions == {"confirmed": 4}
    assert report.leads_closed == {"confirmed": 4}
    hours = [(i % 7 + 1) for i in (3, 8, 13, 18)]  # review_seconds / 3600 in govhelp.drafts
    assert report.time_to_decision["count"] == 4 and report.time_to_decision["max_hours"] == max(hours)
    assert report.policy_digests == ("a" * 64,)


def test_the_period_is_half_open_and_rows_are_accepted() -> None:
    rows = [e.to_row() for e in chain(20)]
    report = usage_report(rows, T0 + 5 * MINUTE, T0 + 10 * MINUTE)
    assert report.entries == 5  # minutes 5, 6, 7, 8, 9
    with pytest.raises(InputError):
        usage_report(rows, T0, T0)


def test_report_renders_as_json_and_markdown() -> None:
    report = usage_report(chain(10), T0, T0 + 10 * MINUTE, organisation="Example | Library")
    data = json.loads(report.to_json())
    assert data["start"] == "2026-03-01T09:00:00.000000Z" and data["by_operation"]["identify"] == 4
    md = report.to_markdown()
    assert md.startswith("# Usage report: Example | Library")
    assert "| identify | 4 |" in md and "## Refusals by reason" in md and "| permission_denied | 2 |" in md
    assert "s0" not in md  # no subject references in the report


def consent(subject: str) -> ConsentRecord:
    return ConsentRecord(
        id=f"c-{subject}",
        gallery="staff",
        subject_ref=subject,
        notice_version="v2",
        purpose="missing_person",
        method=ConsentMethod.SIGNED_FORM,
        given_at=T0,
        collected_by="erin",
        expires_at=T0 + timedelta(days=90),
    )


def test_subject_export_gathers_everything_named_and_hides_other_subjects() -> None:
    entries = chain(20)
    search = entries[0]  # identify: candidate "s0"
    search_with_two = LedgerEntry(
        **{
            **search.to_dict(),
            "result": {
                **search.result,
                "candidates": [*search.result["candidates"], {"subject_ref": "s99", "score": 0.5}],
            },
        }
    )
    pol = policy(organisation={"name": "Example Library", "complaint_channel": "privacy@example.org"})
    templates = [{"id": "t1", "gallery": "staff", "model_id": "yunet-sface", "photo_sha256": "0" * 64}]
    out = subject_export("s0", [consent("s0"), consent("s5")], templates, [search_with_two, *entries[1:]], pol, T0)
    assert out["format"] == "faceledger-subject-export/1"
    assert out["controller"] == {"organisation": "Example Library", "complaint_channel": "privacy@example.org"}
    assert out["policy_digest"] == pol.digest
    assert [c["id"] for c in out["consents"]] == ["c-s0"]
    assert out["consents"][0]["art9_condition"].startswith("Art. 9(2)(a)")
    assert out["templates"] == templates
    seqs = [e["seq"] for e in out["ledger_entries"]]
    assert seqs == [1, 4]  # the search that found s0, and the review naming s0
    candidates = out["ledger_entries"][0]["result"]["candidates"]
    assert [c["subject_ref"] for c in candidates] == ["s0", OTHER_SUBJECT]
    json.dumps(out)  # JSON-able


def test_export_refuses_template_vectors() -> None:
    vector = np.ones(128, dtype=np.float32).tolist()
    with pytest.raises(InputError, match="long list of numbers"):
        subject_export("s0", [], [{"id": "t1", "vector": vector}], [], policy(), T0)
    with pytest.raises(InputError):
        subject_export("", [], [], [], policy(), T0)
