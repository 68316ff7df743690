"""POST /v1/redact on real photos: the redacted photo back, no metadata, a ledger entry, refusals and bad input."""

from __future__ import annotations

import io

import numpy as np
from PIL import ExifTags, Image

from .apihelp import entries, problem


def _with_gps(photo: bytes) -> bytes:
    """The photo re-saved with GPS and camera EXIF and a comment, as a phone would write it."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    with Image.open(io.BytesIO(photo)) as im:
        im.save(out, "JPEG", exif=exif.tobytes(), comment=b"secret comment")
    return out.getvalue()


def test_upload_gives_the_redacted_photo_without_metadata_and_a_ledger_entry(api, server, photos):
    upload = _with_gps(photos.group())
    with Image.open(io.BytesIO(upload)) as im:
        assert im.getexif().get_ifd(ExifTags.IFD.GPSInfo)   # the upload really carries GPS
        size = im.size
    seq = server.head()
    r = api.post("verifier", "/v1/redact", files={"photo": ("team photo.jpg", upload, "image/jpeg")},
                 data={"method": "pixelate", "mask": "box", "mask_scale": "1.8", "purpose": "access_control"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["content-disposition"] == 'attachment; filename="team_photo_redacted.jpg"'
    faces = int(r.headers["x-faces-redacted"])
    assert faces >= 5 and r.headers["x-fully-obscured"] == "false"
    with Image.open(io.BytesIO(r.content)) as out:
        assert out.format == "JPEG" and out.size == size
        assert len(out.getexif()) == 0 and not {"exif", "comment", "icc_profile", "xmp"} & set(out.info)
    for marker in (b"Exif", b"TestCam", b"secret comment"):
        assert marker not in r.content
    (e,) = entries(server, seq, "redact")
    assert (e.actor, e.outcome, e.purpose, e.seq) == ("vera", "ok", "access_control", int(r.headers["x-ledger-seq"]))
    assert (e.result["faces"], e.result["method"], e.result["mask"], e.result["mask_scale"]) == (
        faces, "pixelate", "box", 1.8)
    assert set(e.inputs) == {"photo"} and "boxes" not in e.result


def test_the_ledger_api_shows_the_redaction(api, photos):
    r = api.post("enroller", "/v1/redact", files={"photo": ("p.png", _png(photos.lfw_photo("Aaron_Peirsol", 1)))})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].endswith('_redacted.png"') and r.headers["x-faces-redacted"] == "1"
    export = api.get("auditor", "/v1/ledger/export")
    assert export.status_code == 200
    lines = [line for line in export.text.splitlines() if '"operation":"redact"' in line.replace(" ", "")]
    assert any('"actor":"carl"' in line.replace(" ", "") for line in lines)


def test_a_photo_without_faces_comes_back_unchanged_in_content(api, photos):
    r = api.post("verifier", "/v1/redact", files={"photo": ("street.jpg", photos.no_face())})
    assert r.status_code == 200 and r.headers["x-faces-redacted"] == "0"
    before = np.asarray(Image.open(io.BytesIO(photos.no_face())).convert("RGB")).astype(int)
    after = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
    assert np.abs(before - after).mean() < 3   # only the JPEG re-encoding differs


def test_bad_uploads_are_problems_and_ledgered_as_errors(api, server, photos):
    seq = server.head()
    problem(api.post("verifier", "/v1/redact", files={"photo": ("x.jpg", b"\x00garbage bytes")}), 422,
            "unsupported_format")
    problem(api.post("verifier", "/v1/redact", files={"photo": ("x.jpg", b"\xff\xd8\xff\xe0 truncated")}), 422,
            "corrupt_image")
    big = photos.lfw_photo("Aaron_Peirsol", 1) + b"\0" * (15 * 1024 * 1024)
    problem(api.post("verifier", "/v1/redact", files={"photo": ("big.jpg", big)}), 413, "file_too_large")
    assert [(e.outcome, e.result["error"]) for e in entries(server, seq, "redact")] == [
        ("error", "unsupported_format"), ("error", "corrupt_image"), ("error", "file_too_large")]


def test_form_values_are_bounded(api, server, photos):
    seq = server.head()
    one = {"photo": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1))}
    for data in ({"method": "swirl"}, {"mask": "circle"}, {"mask_scale": "9"}, {"mask_scale": "0.5"}):
        problem(api.post("verifier", "/v1/redact", files=one, data=data), 422, "validation_error")
    problem(api.post("verifier", "/v1/redact", data={"method": "blur"}), 422, "validation_error")  # no photo
    assert server.head() == seq          # refused at the edge, before the engine


def test_no_key_is_401_and_a_role_without_redact_is_403_ledgered(api, server, photos):
    one = {"photo": ("a.jpg", photos.lfw_photo("Aaron_Peirsol", 1))}
    problem(api.post(None, "/v1/redact", files=one), 401, "unauthenticated")
    seq = server.head()
    body = problem(api.post("reviewer", "/v1/redact", files=one), 403, "permission_denied")
    assert body["operation"] == "redact"
    problem(api.post("verifier", "/v1/redact", files=one, data={"purpose": "marketing"}), 403, "purpose_not_allowed")
    assert [(e.actor, e.outcome, e.result["error"]) for e in entries(server, seq, "redact")] == [
        ("rita", "refused", "permission_denied"), ("vera", "refused", "purpose_not_allowed")]


def test_openapi_documents_the_binary_answer(api):
    spec = api.get(None, "/openapi.json").json()["paths"]["/v1/redact"]["post"]
    assert set(spec["responses"]["200"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
    assert {"401", "403", "413", "422", "503"} <= set(spec["responses"])


def _png(jpeg: bytes) -> bytes:
    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as im:
        im.save(out, "PNG")
    return out.getvalue()
