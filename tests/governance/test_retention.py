"""Retention planning: which subjects are due for purge at a time, why, and since when."""

from __future__ import annotations

from datetime import timedelta

from govhelp import T0, policy

from faceledger.governance.consent import ConsentMethod, ConsentRecord, withdraw
from faceledger.governance.retention import PurgeReason, SubjectInfo, plan_retention

DAY = timedelta(days=1)
POLICY = policy(retention={"default_days": 365, "galleries": {"visitors": 30}})


def consent(subject: str, given_day: int = 0, days: int = 200, gallery: str = "staff", cid: str = "") -> ConsentRecord:
    return ConsentRecord(
        id=cid or f"c-{subject}-{given_day}",
        gallery=gallery,
        subject_ref=subject,
        notice_version="v1",
        purpose="access_control",
        method=ConsentMethod.E_SIGNATURE,
        given_at=T0 + given_day * DAY,
        collected_by="erin",
        expires_at=T0 + (given_day + days) * DAY,
    )


def subject(ref: str, gallery: str = "staff", day: int = 0) -> SubjectInfo:
    return SubjectInfo(gallery=gallery, subject_ref=ref, enrolled_at=T0 + day * DAY)


def test_each_reason_and_what_is_kept() -> None:
    subjects = [subject("ok"), subject("expired"), subject("withdrawn"), subject("none"), subject("old", day=-400)]
    consents = [
        consent("ok"),
        consent("expired", days=50),
        withdraw(consent("withdrawn"), T0 + 10 * DAY),
        consent("old", given_day=-400, days=1000),
    ]
    plan = plan_retention(subjects, consents, POLICY, at=T0 + 60 * DAY)
    assert plan.kept == 1
    reasons = {i.subject_ref: i.reasons for i in plan.items}
    assert reasons == {
        "expired": (PurgeReason.CONSENT_EXPIRED,),
        "withdrawn": (PurgeReason.CONSENT_WITHDRAWN,),
        "none": (PurgeReason.NO_CONSENT,),
        "old": (PurgeReason.RETENTION_ELAPSED,),  # a valid consent does not extend retention
    }
    due = {i.subject_ref: i.due_since for i in plan.items}
    assert due["withdrawn"] == T0 + 10 * DAY and due["expired"] == T0 + 50 * DAY
    assert due["old"] == T0 - 35 * DAY and due["none"] == T0
    assert [i.subject_ref for i in plan.items] == ["old", "none", "withdrawn", "expired"]  # most overdue first


def test_gallery_retention_overrides_the_default() -> None:
    plan = plan_retention(
        [subject("v", "visitors"), subject("s")],
        [consent("v", gallery="visitors"), consent("s")],
        POLICY,
        at=T0 + 31 * DAY,
    )
    assert [(i.subject_ref, i.reasons) for i in plan.items] == [("v", (PurgeReason.RETENTION_ELAPSED,))]
    assert plan.items[0].due_since == T0 + 30 * DAY


def test_a_renewed_consent_keeps_the_subject_and_the_last_record_gives_the_reason() -> None:
    first, renewed = consent("a", days=30, cid="c1"), consent("a", given_day=20, days=60, cid="c2")
    assert plan_retention([subject("a")], [first, renewed], POLICY, at=T0 + 40 * DAY).items == ()
    plan = plan_retention([subject("a")], [first, withdraw(renewed, T0 + 50 * DAY)], POLICY, at=T0 + 55 * DAY)
    (item,) = plan.items
    assert item.reasons == (PurgeReason.CONSENT_WITHDRAWN, PurgeReason.CONSENT_EXPIRED)
    assert item.due_since == T0 + 50 * DAY and item.consent_ids == ("c1", "c2")


def test_consents_of_another_gallery_do_not_keep_a_subject() -> None:
    plan = plan_retention([subject("a", "staff")], [consent("a", gallery="visitors")], POLICY, at=T0 + DAY)
    assert plan.items[0].reasons == (PurgeReason.NO_CONSENT,)


def test_both_reasons_are_listed_and_the_earliest_leads() -> None:
    plan = plan_retention([subject("a", day=-360)], [consent("a", given_day=-360, days=350)], POLICY, at=T0 + 10 * DAY)
    (item,) = plan.items
    assert item.reasons == (PurgeReason.CONSENT_EXPIRED, PurgeReason.RETENTION_ELAPSED)
    assert item.due_since == T0 - 10 * DAY


def test_the_plan_is_json_ready() -> None:
    plan = plan_retention([subject("a")], [], POLICY, at=T0 + DAY)
    assert plan.to_dict() == {
        "at": "2026-03-02T09:00:00.000000Z",
        "kept": 0,
        "purge": [
            {
                "gallery": "staff",
                "subject_ref": "a",
                "reasons": ["no_consent"],
                "due_since": "2026-03-01T09:00:00.000000Z",
                "consent_ids": [],
            }
        ],
    }
