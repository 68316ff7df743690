"""POST /v1/detect and /v1/verify: answers, ledger entries, refusals and bad input, on real photos."""

from __future__ import annotations

import io

import pytest

from .apihelp import entries, problem


def two(photos, a=("Aaron_Peirsol", 1), b=("Aaron_Peirsol", 2)) -> dict:
    return {"photo_a": ("a.jpg", photos.lfw_photo(*a), "image/jpeg"),
            "photo_b": ("b.jpg", photos.lfw_photo(*b), "image/jpeg")}


def test_verify_same_and_different_people_each_ledgered(api, server, photos):
    seq = server.head()
    same = api.post("verifier", "/v1/verify", files=two(photos), data={"purpose": "access_control"})
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["match"] is True and body["score"] >= body["threshold"] and body["model_id"]
    assert len(body["face_a"]["landmarks"]) == 5 and body["face_a"]["box"]["w"] > 40
    assert "vector" not in same.text and "embedding" not in same.text
    diff = api.post("verifier", "/v1/verify", files=two(photos, b=("Padraig_Harrington", 1)),
                    data={"purpose": "access_control"})
    assert diff.status_code == 200 and diff.json()["match"] is False
    logged = entries(server, seq, "verify")
    assert [(e.actor, e.role, e.outcome, e.purpose, e.result["match"]) for e in logged] == [
        ("vera", "verifier", "ok", "access_control", True), ("vera", "verifier", "ok", "access_control", False)]
    assert set(logged[0].inputs) == {"photo_a", "photo_b"}


def test_detect_group_photo_and_its_ledger_entry(api, server, photos):
    seq = server.head()
    r = api.post("enroller", "/v1/detect", files={"photo": ("g.jpg", photos.group(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == len(r.json()["faces"]) >= 5
    (e,) = entries(server, seq, "detect")
    assert (e.actor, e.outcome, e.result["faces"]) == ("carl", "ok", r.json()["count"])


def test_verify_choosing_a_face_of_a_group_photo(api, photos):
    files = {"photo_a": ("g.jpg", photos.group(), "image/jpeg"),
             "photo_b": ("b.jpg", photos.lfw_photo("Aaron_Peirsol", 1), "image/jpeg")}
    problem(api.post("verifier", "/v1/verify", files=files, data={"purpose": "access_control"}), 422,
            "multiple_faces")
    r = api.post("verifier", "/v1/verify", files=files, data={"purpose": "access_control", "face_a": "largest"})
    assert r.status_code == 200 and r.json()["match"] is False
    problem(api.post("verifier", "/v1/verify", files=files, data={"purpose": "access_control", "face_a": "99"}), 422,
            "bad_face_selection")
    problem(api.post("verifier", "/v1/verify", files=files, data={"purpose": "access_control", "face_a": "left"}), 422,
            "bad_face_selection")


def test_no_key_bad_key_and_revoked_key_get_401(api, server, photos):
    anonymous = api.post(None, "/v1/verify", files=two(photos))
    problem(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    problem(api.post(None, "/v1/verify", files=two(photos), headers={"Authorization": "Bearer flk_nope"}), 401,
            "unauthenticated")
    problem(api.post(None, "/v1/verify", files=two(photos), headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401,
            "unauthenticated")
    server.add_key("temp_verifier", "tess", "verifier")
    key_id = server.tokens["temp_verifier"].split("_")[1]
    assert api.post("admin", f"/v1/keys/{key_id}/revoke").status_code == 200
    problem(api.post("temp_verifier", "/v1/verify", files=two(photos)), 401, "unauthenticated")


def test_role_without_permission_is_refused_and_ledgered(api, server, photos):
    seq = server.head()
    body = problem(api.post("reviewer", "/v1/verify", files=two(photos), data={"purpose": "access_control"}), 403,
                   "permission_denied")
    assert body["operation"] == "verify" and body["role"] == "reviewer"
    problem(api.post("admin", "/v1/detect", files={"photo": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1))}), 403,
            "permission_denied")
    refused = entries(server, seq)
    assert [(e.operation, e.outcome, e.actor, e.result["error"]) for e in refused] == [
        ("verify", "refused", "rita", "permission_denied"), ("detect", "refused", "admin", "permission_denied")]


def test_purpose_must_be_allowed_and_declared(api, server, photos):
    seq = server.head()
    problem(api.post("verifier", "/v1/verify", files=two(photos), data={"purpose": "marketing"}), 403,
            "purpose_not_allowed")
    problem(api.post("verifier", "/v1/verify", files=two(photos)), 403, "purpose_not_allowed")  # two allowed: say which
    assert [e.outcome for e in entries(server, seq, "verify")] == ["refused", "refused"]


@pytest.mark.parametrize("content, code", [
    (b"", "empty_input"),
    (b"GIF89a not a supported photo", "unsupported_format"),
    (b"\xff\xd8\xff\xe0 truncated jpeg", "corrupt_image"),
])
def test_unusable_photos_are_422_and_ledgered_as_errors(api, server, photos, content, code):
    seq = server.head()
    files = {"photo_a": ("a.jpg", content, "image/jpeg"), "photo_b": ("b.jpg", photos.lfw_photo("Aaron_Peirsol", 1))}
    problem(api.post("verifier", "/v1/verify", files=files, data={"purpose": "access_control"}), 422, code)
    (e,) = entries(server, seq, "verify")
    assert (e.outcome, e.result["error"]) == ("error", code)


def test_no_face_is_422(api, photos):
    files = {"photo_a": ("a.jpg", photos.no_face()), "photo_b": ("b.jpg", photos.lfw_photo("Aaron_Peirsol", 1))}
    problem(api.post("verifier", "/v1/verify", files=files, data={"purpose": "access_control"}), 422, "no_face")
    r = api.post("verifier", "/v1/detect", files={"photo": ("n.jpg", photos.no_face())})
    assert r.status_code == 200 and r.json()["count"] == 0


def test_pixel_cap_is_413(api):
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8000, 6000), (90, 90, 90)).save(out, "PNG")   # 48 megapixels, a small file
    body = problem(api.post("verifier", "/v1/detect", files={"photo": ("big.png", out.getvalue(), "image/png")}),
                   413, "image_too_large")
    assert body["limit"] == 40_000_000


def test_per_photo_byte_cap_is_413(api, photos):
    big = photos.lfw_photo("Aaron_Peirsol", 1) + b"\0" * (15 * 1024 * 1024)
    problem(api.post("verifier", "/v1/detect", files={"photo": ("big.jpg", big, "image/jpeg")}), 413,
            "file_too_large")


def test_request_body_cap_is_413_before_anything_runs(make_server, photos):
    small = make_server(max_request_bytes=200_000)
    h = small.headers("admin")
    seq = small.head()
    files = {"photo": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1) + b"\0" * 300_000, "image/jpeg")}
    problem(small.client.post("/v1/detect", headers=h, files=files), 413, "request_too_large")

    def chunks():                       # no Content-Length: counted while it streams in
        yield b"x" * 150_000
        yield b"x" * 150_000
    r = small.client.post("/v1/detect", headers={**h, "Content-Type": "multipart/form-data; boundary=zz"},
                          content=chunks())
    problem(r, 413, "request_too_large")
    assert small.head() == seq


def test_a_url_or_a_path_instead_of_a_photo_is_refused_never_fetched(api, server):
    seq = server.head()
    for where in ("http://127.0.0.1:9/face.jpg", "file:///etc/passwd", "/etc/passwd"):
        problem(api.post("verifier", "/v1/detect", data={"photo": where}), 422, "validation_error")
    assert server.head() == seq          # refused at the edge: the engine never saw a path or a URL


def test_missing_upload_and_bad_form_values_are_validation_errors(api, photos):
    one = {"photo_a": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1))}
    body = problem(api.post("verifier", "/v1/verify", files=one), 422, "validation_error")
    assert any("photo_b" in e["loc"] for e in body["errors"])
    problem(api.post("verifier", "/v1/detect", files={"photo": ("a.jpg", b"x")}, data={"score_threshold": "2"}), 422,
            "validation_error")
    problem(api.post("verifier", "/v1/detect", content=b"not a form", headers={"Content-Type": "text/plain"}), 422,
            "validation_error")
