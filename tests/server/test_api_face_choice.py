"""Choosing the face in a photo with several: the refusal lists the faces' boxes, and enrollment
takes one choice per photo (``faces``), so a client can let the user click the face to use."""

from __future__ import annotations

from .apihelp import problem


def test_enrollment_lists_the_boxes_of_a_crowded_photo_and_takes_a_choice_per_photo(api, photos):
    gallery = api.gallery()
    assert api.consent(gallery, "Aaron_Peirsol").status_code == 201
    single, crowd = photos.lfw_photo("Aaron_Peirsol", 1), photos.group()
    body = problem(api.enroll(gallery, "Aaron_Peirsol", [single, crowd]), 422, "enrollment_rejected")
    (rejection,) = body["rejections"]
    assert rejection["photo"] == 2 and rejection["code"] == "multiple_faces"
    detected = api.post("verifier", "/v1/detect", files={"photo": ("c.jpg", crowd)}).json()["faces"]
    boxes = [[round(v) for v in b] for b in rejection["boxes"]]
    assert boxes == [[round(f["box"][k]) for k in ("x", "y", "w", "h")] for f in detected]   # the same order

    parts = [("photos", ("a.jpg", single, "image/jpeg")), ("photos", ("c.jpg", crowd, "image/jpeg"))]
    picked = api.post("enroller", f"/v1/galleries/{gallery}/enroll", files=parts,
                      data={"subject_ref": "Aaron_Peirsol", "faces": ["", "1"]})
    assert picked.status_code == 201, picked.text
    assert picked.json()["templates_added"] == 2

    wrong = api.post("enroller", f"/v1/galleries/{gallery}/enroll", files=parts,
                     data={"subject_ref": "Aaron_Peirsol", "faces": ["1"]})
    problem(wrong, 422, "bad_face_selection")
