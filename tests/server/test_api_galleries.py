"""Galleries, consent, enrollment, subjects, erasure and data-subject export over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .apihelp import entries, problem


def test_gallery_create_list_show_delete(api, server):
    seq = server.head()
    name = api.gallery("staff")
    listed = {g["name"]: g for g in api.get("enroller", "/v1/galleries").json()}
    g = listed[name]
    assert g["subjects"] == 0 and g["operating_point"] in g["thresholds"] and g["model_id"]
    assert api.get("auditor", f"/v1/galleries/{name}").json()["name"] == name
    problem(api.get("auditor", "/v1/galleries/nope-404"), 404, "not_found")
    problem(api.post("admin", "/v1/galleries", json={"name": name}), 409, "conflict")
    problem(api.post("enroller", "/v1/galleries", json={"name": "x-by-clerk"}), 403, "permission_denied")
    problem(api.get("reviewer", "/v1/galleries"), 403, "permission_denied")
    problem(api.post("admin", "/v1/galleries", json={"name": "bad name!"}), 422, "validation_error")
    problem(api.post("admin", "/v1/galleries", json={"name": "ok-name", "colour": "red"}), 422, "validation_error")
    r = api.delete("admin", f"/v1/galleries/{name}")
    assert r.status_code == 200 and r.json()["subjects_erased"] == 0
    problem(api.delete("admin", f"/v1/galleries/{name}"), 404, "not_found")
    ops = [(e.operation, e.outcome) for e in entries(server, seq) if e.operation.startswith("gallery")]
    assert ("gallery_create", "ok") in ops and ("gallery_delete", "ok") in ops
    assert ("gallery_create", "refused") in ops and ("gallery_list", "refused") in ops


def test_no_consent_no_template(api, server, photos):
    gallery = api.gallery()
    seq = server.head()
    body = problem(api.enroll(gallery, "Aaron_Peirsol", [photos.lfw_photo("Aaron_Peirsol", 1)]), 403,
                   "consent_required")
    assert body["reason"] == "none"
    (e,) = entries(server, seq, "enroll")
    assert (e.outcome, e.actor, e.subject_ref, e.result["error"]) == ("refused", "carl", "Aaron_Peirsol",
                                                                     "consent_required")
    assert api.get("enroller", f"/v1/galleries/{gallery}/subjects").json() == []


def test_consent_then_enroll_then_export_and_erase(api, server, photos):
    gallery = api.gallery()
    seq = server.head()
    c = api.consent(gallery, "Aaron_Peirsol")
    assert c.status_code == 201, c.text
    consent = c.json()
    assert consent["collected_by"] == "carl" and consent["legal_basis"] == "explicit_consent"
    two = [photos.lfw_photo("Aaron_Peirsol", 1), photos.lfw_photo("Aaron_Peirsol", 2)]
    r = api.enroll(gallery, "Aaron_Peirsol", two)
    assert r.status_code == 201, r.text
    assert (r.json()["templates_added"], r.json()["templates_existing"]) == (2, 0)
    again = api.enroll(gallery, "Aaron_Peirsol", [photos.lfw_photo("Aaron_Peirsol", 1)])
    assert again.status_code == 201 and (again.json()["templates_added"], again.json()["templates_existing"]) == (0, 1)
    subjects = api.get("enroller", f"/v1/galleries/{gallery}/subjects").json()
    assert [(s["subject_ref"], s["templates"]) for s in subjects] == [("Aaron_Peirsol", 2)]
    listed = api.get("enroller", f"/v1/galleries/{gallery}/consents", params={"subject_ref": "Aaron_Peirsol"}).json()
    assert [x["id"] for x in listed] == [consent["id"]]

    export = api.get("admin", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol/export")
    assert export.status_code == 200
    data = export.json()
    assert len(data["templates"]) == 2 and data["consents"][0]["id"] == consent["id"]
    assert all("vector" not in t for t in data["templates"])
    problem(api.get("enroller", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol/export"), 403, "permission_denied")

    problem(api.delete("enroller", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol"), 403, "permission_denied")
    erased = api.delete("admin", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol", params={"reason": "request"})
    assert erased.status_code == 200 and erased.json()["templates_erased"] == 2
    problem(api.delete("admin", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol"), 404, "not_found")
    ops = [(e.operation, e.outcome) for e in entries(server, seq) if e.gallery == gallery]
    for expected in [("consent_record", "ok"), ("enroll", "ok"), ("export", "ok"), ("export", "refused"),
                     ("erase", "refused"), ("erase", "ok")]:
        assert expected in ops, expected
    assert sum(1 for op in ops if op == ("enroll", "ok")) == 2


def test_withdrawing_consent_erases_the_subject(api, server, photos):
    gallery = api.gallery()
    assert api.consent(gallery, "Padraig_Harrington").status_code == 201
    assert api.enroll(gallery, "Padraig_Harrington", [photos.lfw_photo("Padraig_Harrington", 1)]).status_code == 201
    seq = server.head()
    r = api.post("enroller", f"/v1/galleries/{gallery}/consents/withdraw", json={"subject_ref": "Padraig_Harrington"})
    assert r.status_code == 200 and r.json()["templates_erased"] == 1
    assert api.get("enroller", f"/v1/galleries/{gallery}/subjects").json() == []
    withdrawn = api.get("enroller", f"/v1/galleries/{gallery}/consents").json()
    assert withdrawn[0]["withdrawn_at"] is not None
    problem(api.post("enroller", f"/v1/galleries/{gallery}/consents/withdraw",
                     json={"subject_ref": "Padraig_Harrington"}), 404, "not_found")
    ops = [(e.operation, e.outcome) for e in entries(server, seq)]
    assert ops[:2] == [("consent_withdraw", "ok"), ("erase", "ok")]
    problem(api.enroll(gallery, "Padraig_Harrington", [photos.lfw_photo("Padraig_Harrington", 2)]), 403,
            "consent_required")


def test_consent_bad_input(api, server):
    gallery = api.gallery()
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    problem(api.consent(gallery, "x", expires_at=past), 422, "invalid_input")
    problem(api.consent(gallery, "x", method="handshake"), 422, "validation_error")
    problem(api.consent(gallery, "x", purpose="marketing"), 403, "purpose_not_allowed")
    problem(api.consent(gallery, "x", legal_basis="legitimate_interests"), 403, "consent_required")
    problem(api.consent(gallery, "x", given_at="2020-01-01T00:00:00"), 422, "invalid_input")
    problem(api.consent("no-such-gallery", "x"), 404, "not_found")
    problem(api.post("verifier", f"/v1/galleries/{gallery}/consents",
                     json={"subject_ref": "x", "purpose": "access_control", "notice_version": "v",
                           "method": "signed_form"}),
            403, "permission_denied")
    # The record id is always the service's: a client cannot overwrite an existing record by reusing one.
    problem(api.consent(gallery, "y", id="consent-1"), 422, "validation_error")


def test_enrollment_quality_gate_and_photo_problems(api, photos):
    gallery = api.gallery()
    assert api.consent(gallery, "crowd").status_code == 201
    body = problem(api.enroll(gallery, "crowd", [photos.no_face(), photos.group()]), 422, "enrollment_rejected")
    assert [r["photo"] for r in body["rejections"]] == [1, 2]     # photos numbered from 1, as everywhere
    assert "no_face" in body["rejections"][0]["reason"] and "multiple_faces" in body["rejections"][1]["reason"]
    assert api.get("enroller", f"/v1/galleries/{gallery}/subjects").json() == []
    problem(api.enroll("no-such-gallery", "crowd", [photos.lfw_photo("Aaron_Peirsol", 1)]), 404, "not_found")
    problem(api.post("enroller", f"/v1/galleries/{gallery}/enroll", data={"subject_ref": "crowd"}), 422,
            "validation_error")
    too_many = [photos.lfw_photo("Aaron_Peirsol", 1)] * 11
    problem(api.enroll(gallery, "crowd", too_many), 413, "too_many_photos")
    problem(api.post("verifier", f"/v1/galleries/{gallery}/enroll", data={"subject_ref": "crowd"},
                     files=[("photos", ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1)))]), 403, "permission_denied")


def test_gallery_with_subjects_needs_erase_subjects_to_delete(api, server, photos):
    gallery = api.gallery()
    assert api.consent(gallery, "Aaron_Peirsol").status_code == 201
    assert api.enroll(gallery, "Aaron_Peirsol", [photos.lfw_photo("Aaron_Peirsol", 3)]).status_code == 201
    problem(api.delete("admin", f"/v1/galleries/{gallery}"), 409, "conflict")
    r = api.delete("admin", f"/v1/galleries/{gallery}", params={"erase_subjects": "true"})
    assert r.status_code == 200 and r.json()["subjects_erased"] == 1


def test_a_second_active_consent_is_refused_and_a_renewal_names_the_first(api, server):
    name = api.gallery("renew")
    first = api.consent(name, "sam")
    assert first.status_code == 201, first.text
    problem(api.consent(name, "sam"), 409, "conflict")
    renewal = api.consent(name, "sam", notice_version="notice-v4", supersedes=first.json()["id"])
    assert renewal.status_code == 201, renewal.text
    assert renewal.json()["supersedes"] == first.json()["id"]
    held = {c["id"]: c for c in api.get("enroller", f"/v1/galleries/{name}/consents").json()}
    assert held[first.json()["id"]]["superseded_by"] == renewal.json()["id"]
    ops = [(e.operation, e.outcome) for e in server.ledger() if e.gallery == name]
    assert ops[-2:] == [("consent_record", "error"), ("consent_record", "ok")]
