"""Authorizations, 1:N identification as leads, and human review over HTTP: every rule and refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from .apihelp import Api, entries, problem


@pytest.fixture(scope="module")
def gallery(server, photos) -> str:
    """A gallery with two consenting, enrolled people and a valid authorization for investigation."""
    api = Api(server)
    name = api.gallery("known")
    for person in ("Aaron_Peirsol", "Padraig_Harrington"):
        assert api.consent(name, person).status_code == 201
        r = api.enroll(name, person, [photos.lfw_photo(person, 1), photos.lfw_photo(person, 2)])
        assert r.status_code == 201, r.text
    assert api.authorize(name).status_code == 201
    return name


def test_authorizations_record_list_revoke(api, server):
    name = api.gallery("auth")
    seq = server.head()
    r = api.authorize(name, valid_days=7)
    assert r.status_code == 201, r.text
    auth = r.json()
    assert auth["recorded_by"] == "admin" and auth["galleries"] == [name] and auth["revoked_at"] is None
    assert auth["id"] in [a["id"] for a in api.get("investigator", "/v1/authorizations").json()]
    revoked = api.post("admin", f"/v1/authorizations/{auth['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    problem(api.post("admin", "/v1/authorizations/nope/revoke"), 404, "not_found")
    problem(api.post("investigator", f"/v1/authorizations/{auth['id']}/revoke"), 403, "permission_denied")
    problem(api.authorize("no-such-gallery"), 404, "not_found")
    problem(api.post("admin", "/v1/authorizations", json={"kind": "hunch", "reference": "r", "issuer": "i",
                                                            "galleries": [name], "purposes": ["investigation"]}),
            422, "validation_error")
    problem(api.authorize(name, valid_from="2026-01-02T00:00:00Z", valid_until="2026-01-01T00:00:00Z"), 422,
            "invalid_input")
    ops = [(e.operation, e.outcome) for e in entries(server, seq)]
    for expected in [("authorization_record", "ok"), ("authorization_revoke", "ok"),
                     ("authorization_revoke", "refused")]:
        assert expected in ops


def test_identify_gives_leads_and_ledgers_the_search(api, server, photos, gallery):
    seq = server.head()
    r = api.identify(gallery, photos.lfw_photo("Aaron_Peirsol", 3))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "not a basis for action on its own" and not body["no_match"]
    (face,) = body["faces"]
    assert face["candidates"][0]["subject_ref"] == "Aaron_Peirsol" and face["lead_id"]
    assert all(c["score"] >= body["threshold"] for c in face["candidates"])
    (e,) = entries(server, seq, "identify")
    assert (e.actor, e.outcome, e.gallery, e.purpose, e.result["authorization_id"]) == (
        "ines", "ok", gallery, "investigation", body["authorization_id"])
    assert e.seq == body["ledger_seq"] and e.result["candidates"][0][0]["subject_ref"] == "Aaron_Peirsol"
    leads = api.get("reviewer", "/v1/leads", params={"status": "pending", "gallery": gallery}).json()
    assert face["lead_id"] in [x["id"] for x in leads]


def test_a_stranger_is_an_explicit_no_match(api, photos, gallery):
    r = api.identify(gallery, photos.lfw_photo("AJ_Cook", 1))
    assert r.status_code == 200 and r.json()["no_match"] is True
    assert r.json()["faces"][0]["candidates"] == [] and r.json()["faces"][0]["lead_id"] is None


def test_identification_refusals_each_ledgered(api, server, photos, gallery):
    probe = photos.lfw_photo("Aaron_Peirsol", 3)
    seq = server.head()
    problem(api.identify(gallery, probe, flags=["protest"]), 403, "prohibited_use")
    problem(api.identify(gallery, probe, purpose="access_control"), 403, "authorization_required")
    problem(api.identify(gallery, probe, purpose="marketing"), 403, "purpose_not_allowed")
    problem(api.identify(gallery, probe, who="enroller"), 403, "permission_denied")
    other = api.gallery("unauthorized")
    problem(api.identify(other, probe), 403, "authorization_required")
    expired = api.gallery("expired")
    past = datetime.now(UTC) - timedelta(days=10)
    assert api.authorize(expired, valid_from=past.isoformat(), valid_until=(past + timedelta(days=1)).isoformat()
                         ).status_code == 201
    body = problem(api.identify(expired, probe), 403, "authorization_required")
    assert body["reason"] == "expired"
    refused = entries(server, seq, "identify")
    assert [e.outcome for e in refused] == ["refused"] * 6
    assert {e.result["error"] for e in refused} == {"prohibited_use", "authorization_required", "purpose_not_allowed",
                                                    "permission_denied"}
    problem(api.identify("no-such-gallery", probe), 403, "authorization_required")
    problem(api.identify(gallery, b"not a photo"), 422, "unsupported_format")
    problem(api.identify(gallery, photos.group(), face="sideways"), 422, "bad_face_selection")


def test_identification_off_in_the_safe_default_policy(make_server, photos):
    default = make_server(policy=None)
    default.add_key("investigator", "ines", "investigator")
    r = default.client.post("/v1/galleries/any/identify", headers=default.headers("investigator"),
                            files={"photo": ("p.jpg", photos.lfw_photo("Aaron_Peirsol", 3))},
                            data={"purpose": "access_control"})
    problem(r, 403, "identification_disabled")
    assert default.ledger()[-1].outcome == "refused"


def test_review_confirm_reject_and_the_rules(api, server, photos, gallery):
    leads = []
    for n in (3, 4):
        r = api.identify(gallery, photos.lfw_photo("Aaron_Peirsol", n))
        assert r.status_code == 200, r.text
        leads.append(r.json()["faces"][0]["lead_id"])
    seq = server.head()
    problem(api.post("ines_reviewer", f"/v1/leads/{leads[0]}/reviews",
                     json={"decision": "confirmed", "rationale": "mine", "subject_ref": "Aaron_Peirsol"}), 403,
            "self_review")
    problem(api.post("investigator", f"/v1/leads/{leads[0]}/reviews",
                     json={"decision": "rejected", "rationale": "x"}), 403, "permission_denied")
    problem(api.post("reviewer", f"/v1/leads/{leads[0]}/reviews", json={"decision": "maybe", "rationale": "x"}), 422,
            "validation_error")
    problem(api.post("reviewer", f"/v1/leads/{leads[0]}/reviews", json={"decision": "confirmed", "rationale": ""}), 422,
            "validation_error")
    problem(api.post("reviewer", "/v1/leads/no-such-lead/reviews", json={"decision": "rejected", "rationale": "x"}),
            404, "not_found")
    ok = api.post("reviewer", f"/v1/leads/{leads[0]}/reviews",
                  json={"decision": "confirmed", "rationale": "same ear shape and scar",
                        "subject_ref": "Aaron_Peirsol"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "confirmed" and ok.json()["confirmed_subject"] == "Aaron_Peirsol"
    problem(api.post("reviewer", f"/v1/leads/{leads[0]}/reviews", json={"decision": "rejected", "rationale": "again"}),
            409, "conflict")
    no = api.post("reviewer2", f"/v1/leads/{leads[1]}/reviews", json={"decision": "rejected", "rationale": "no"})
    assert no.status_code == 200 and no.json()["status"] == "rejected"
    reviews = entries(server, seq, "review")
    assert [(e.actor, e.outcome) for e in reviews] == [("ines", "refused"), ("ines", "refused"), ("rita", "error"),
                                                       ("rita", "ok"), ("rita", "error"), ("rob", "ok")]
    key_of = {name: "key:" + server.tokens[name].split("_")[1]
              for name in ("ines_reviewer", "investigator", "reviewer", "reviewer2")}
    assert [e.credential for e in reviews] == [key_of["ines_reviewer"], key_of["investigator"], key_of["reviewer"],
                                               key_of["reviewer"], key_of["reviewer"], key_of["reviewer2"]]
    statuses = {x["id"]: x["status"] for x in api.get("auditor", "/v1/leads").json()}
    assert statuses[leads[0]] == "confirmed" and statuses[leads[1]] == "rejected"
    problem(api.get("verifier", "/v1/leads"), 403, "permission_denied")
    problem(api.get("reviewer", "/v1/leads", params={"status": "open"}), 422, "validation_error")


@pytest.mark.parametrize("given,status,code", [
    (["Protest"], 403, "prohibited_use"), ([" protest"], 403, "prohibited_use"), (["protests"], 403, "prohibited_use"),
    (["lawful-assembly"], 403, "prohibited_use"), (["religious activity"], 403, "prohibited_use"),
    (["prot\u0435st"], 403, "prohibited_use"), (["pro\u200btest"], 403, "prohibited_use"),
    (["suspect", "rally"], 422, "unknown_target"), (["s\u0443spect"], 422, "unknown_target"),
])
def test_declared_targets_are_a_closed_vocabulary_over_http(api, server, photos, gallery, given, status, code):
    seq = server.head()
    problem(api.identify(gallery, photos.lfw_photo("Aaron_Peirsol", 3), flags=given), status, code)
    (e,) = entries(server, seq, "identify")
    assert e.outcome == "refused" and e.result["error"] == code and not e.inputs
    assert e.result["targets"]["given"] == [g.encode("ascii", "backslashreplace").decode() for g in given]


def test_the_vocabulary_is_served_and_allowed_targets_recorded(api, server, photos, gallery):
    vocab = api.get("investigator", "/v1/targets").json()
    assert "suspect" in vocab["allowed"] and "protest" in vocab["prohibited"]
    seq = server.head()
    r = api.identify(gallery, photos.lfw_photo("Aaron_Peirsol", 3), flags=["Suspects"])
    assert r.status_code == 200, r.text
    (e,) = entries(server, seq, "identify")
    assert e.result["targets"] == {"given": ["Suspects"], "normalised": ["suspect"], "prohibited": []}


def test_the_reviewer_gets_the_faces_to_compare_over_http(api, server, photos, gallery):
    import base64

    r = api.identify(gallery, photos.lfw_photo("Aaron_Peirsol", 3))
    lead = r.json()["faces"][0]["lead_id"]
    seq = server.head()
    ev = api.get("reviewer", f"/v1/leads/{lead}/evidence")
    assert ev.status_code == 200, ev.text
    body = ev.json()
    assert body["label"] == "not a basis for action on its own" and body["lead"]["evidence"] is True
    first = body["candidates"][0]
    assert first["subject_ref"] == "Aaron_Peirsol" and first["rank"] == 1 and first["score"] > 0.3
    for url in (body["probe_crop"], first["crop"]):
        assert url.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(url.split(",", 1)[1])[:3] == b"\xff\xd8\xff"
    assert body["reviews"] == []
    (e,) = entries(server, seq, "lead_show")
    assert (e.actor, e.outcome, e.result["probe_crop"]) == ("rita", "ok", True)
    problem(api.get("investigator", f"/v1/leads/{lead}/evidence"), 403, "permission_denied")
    problem(api.get("reviewer", "/v1/leads/no-such-lead/evidence"), 404, "not_found")
