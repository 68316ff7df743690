"""A subject's enrolled face crops: shown to the roles allowed (enroller, admin), each look ledgered,
gone with the subject."""

from __future__ import annotations

import base64

from .apihelp import entries, problem


def test_enrolled_faces_are_shown_to_allowed_roles_and_ledgered(api, server, photos):
    gallery = api.gallery()
    assert api.consent(gallery, "Aaron_Peirsol").status_code == 201
    assert api.enroll(gallery, "Aaron_Peirsol", [photos.lfw_photo("Aaron_Peirsol", 1),
                                                 photos.lfw_photo("Aaron_Peirsol", 2)]).status_code == 201
    path = f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol/faces"
    r = api.get("enroller", path)
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 2
    for url in faces:
        head, _, data = url.partition(",")
        assert head == "data:image/jpeg;base64" and base64.b64decode(data)[:3] == b"\xff\xd8\xff"   # a JPEG
    assert api.get("admin", path).status_code == 200
    problem(api.get("verifier", path), 403, "permission_denied")
    looks = [e for e in entries(server, 0, "subject_faces") if e.outcome == "ok"]
    assert len(looks) == 2 and looks[-1].subject_ref == "Aaron_Peirsol"
    assert api.delete("admin", f"/v1/galleries/{gallery}/subjects/Aaron_Peirsol").status_code == 200
    problem(api.get("enroller", path), 404, "not_found")
