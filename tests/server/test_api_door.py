"""The one door through HTTP: key rules, credentials in the ledger, shared input rules, and erasure
reaching the answers kept for Idempotency-Key replays."""

from __future__ import annotations

import pytest

from .apihelp import Api, entries, problem


def key_id(token: str) -> str:
    return token.split("_")[1]


def test_key_rules_reserved_actor_and_the_last_admin_key(make_server):
    fresh = make_server()
    api = Api(fresh)
    boot = fresh.ledger()
    assert {(e.operation, e.actor, e.credential) for e in boot if e.operation == "key_create"} == {
        ("key_create", "faceledger-service", "service")}
    problem(api.post("admin", "/v1/keys", json={"actor": "faceledger-service", "role": "admin"}), 403,
            "permission_denied")
    only = key_id(fresh.tokens["admin"])
    problem(api.post("admin", f"/v1/keys/{only}/revoke"), 409, "conflict")  # the only admin key, by itself
    fresh.add_key("admin2", "ada", "admin")
    r = api.post("admin", f"/v1/keys/{only}/revoke")
    assert r.status_code == 200 and r.json()["active"] is False
    problem(api.get("admin", "/v1/me"), 401, "unauthenticated")
    problem(api.post("admin2", f"/v1/keys/{key_id(fresh.tokens['admin2'])}/revoke"), 409, "conflict")
    ops = [(e.operation, e.outcome, e.credential) for e in fresh.ledger(len(boot)) if e.operation.startswith("key_")]
    assert ops == [("key_create", "refused", f"key:{only}"), ("key_revoke", "error", f"key:{only}"),
                   ("key_create", "ok", f"key:{only}"), ("key_revoke", "ok", f"key:{only}"),
                   ("key_revoke", "error", f"key:{key_id(fresh.tokens['admin2'])}")]


@pytest.mark.parametrize("ref", ["a/b", "a\x00b", "line\nbreak", "evil\u202etxt", "zero\u200bwidth", "trail "])
def test_subject_references_that_cannot_be_shown_or_erased_are_refused(api, server, ref):
    gallery = api.gallery("refs")
    seq = server.head()
    body = problem(api.consent(gallery, ref), 422, "invalid_input")
    assert "subject_ref" in body["detail"]
    (entry,) = entries(server, seq, "consent_record")
    assert entry.outcome == "error" and entry.subject_ref is None


def test_times_need_a_zone_and_authorizations_name_their_purposes(api, server):
    gallery = api.gallery("rules")
    problem(api.consent(gallery, "x", given_at="2026-01-01T00:00:00"), 422, "invalid_input")
    problem(api.authorize(gallery, valid_from="2026-01-01T00:00:00"), 422, "invalid_input")
    body = problem(api.authorize(gallery, purposes=("*",)), 422, "invalid_input")
    assert "no wildcard" in body["detail"]
    problem(api.authorize(gallery, purposes=("marketing",)), 403, "purpose_not_allowed")
    assert api.authorize(gallery).status_code == 201


def test_erasure_purges_kept_answers_that_name_the_subject(api, server, photos):
    gallery = api.gallery("purge")
    assert api.consent(gallery, "Aaron_Peirsol").status_code == 201
    keep = {"Idempotency-Key": f"enroll-{gallery}"}
    parts = [("photos", ("p.jpg", photos.lfw_photo("Aaron_Peirsol", 1), "image/jpeg"))]
    r = api.post("enroller", f"/v1/galleries/{gallery}/enroll", files=parts, data={"subject_ref": "Aaron_Peirsol"},
                 headers=keep)
    assert r.status_code == 201, r.text
    assert api.authorize(gallery).status_code == 201
    ask = {"Idempotency-Key": f"identify-{gallery}"}
    probe = {"photo": ("probe.jpg", photos.lfw_photo("Aaron_Peirsol", 2), "image/jpeg")}
    first = api.post("investigator", f"/v1/galleries/{gallery}/identify", files=probe,
                     data={"purpose": "investigation"}, headers=ask)
    assert first.json()["faces"][0]["candidates"][0]["subject_ref"] == "Aaron_Peirsol"
    again = api.post("investigator", f"/v1/galleries/{gallery}/identify", files=probe,
                     data={"purpose": "investigation"}, headers=ask)
    assert again.headers.get("idempotent-replayed") == "true"
    kept = server.service.gov.store.list_records("idempotency")
    naming = [r for r in kept if "Aaron_Peirsol" in str(r.data)]
    assert len(naming) >= 2
    erased = api.delete("admin", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol")
    assert erased.status_code == 200, erased.text
    assert not [r for r in server.service.gov.store.list_records("idempotency") if "Aaron_Peirsol" in str(r.data)]
    (erase,) = entries(server, 0, "erase")[-1:]
    assert erase.result["replays_purged"] == len(naming)
    after = api.post("investigator", f"/v1/galleries/{gallery}/identify", files=probe,
                     data={"purpose": "investigation"}, headers=ask)
    assert "idempotent-replayed" not in after.headers and after.json()["no_match"] is True
