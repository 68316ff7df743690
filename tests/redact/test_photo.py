"""Photo redaction on real photos: unrecognisable faces, metadata, orientation, fail-closed, refusals."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from faceledger.core.redaction import RedactionStyle
from faceledger.errors import CorruptImageError, EmptyInputError, UnsupportedFormatError
from faceledger.redact import OutputExistsError, RedactOptions, Redactor, redact_image
from faceledger.redact.photo import redact_photo

# pytest runs with --import-mode=importlib, which does not put this folder on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from redact_helpers import RaisingDetector  # noqa: E402


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def _jpeg_roundtrip(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("method", ["blur", "pixelate", "fill"])
def test_each_method_makes_every_face_unrecognisable(engine, detector, multiface: Path, method: str):
    """SFace on the same landmarks: the re-encoded photo still verifies, the redacted one does not."""
    img = engine.load(multiface)
    faces = engine.detect(img, quality=False)
    assert len(faces) >= 5
    threshold = engine.backend.thresholds.get(None).threshold
    result = redact_image(img.rgb, detector, RedactOptions(style=RedactionStyle(method=method)))
    assert len(result.boxes) >= len(faces) and not result.obscured
    control = _jpeg_roundtrip(img.rgb)
    for face in faces:  # one face per call: each template from its own aligned crop
        original = engine.embed(img, [face])[0].vector
        assert _cosine(original, engine.embed(control, [face])[0].vector) >= threshold
        redacted = engine.embed(result.rgb, [face])[0].vector
        assert _cosine(original, redacted) < 0.3, f"{method}: face at {face.box} still recognisable"


def _jpeg_with_metadata(path: Path, rgb: np.ndarray, orientation: int = 1) -> Path:
    """A JPEG carrying GPS and camera EXIF, XMP, an ICC profile and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Model] = "Model X"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret-xmp</rdf:RDF></x:xmpmeta>'
    Image.fromarray(rgb).save(
        path, "JPEG", exif=exif.tobytes(), xmp=xmp, icc_profile=b"fake-icc-profile", comment=b"secret comment"
    )
    return path


def test_gps_exif_xmp_icc_and_comments_are_stripped(detector, multiface: Path, tmp_path: Path):
    rgb = np.asarray(Image.open(multiface).convert("RGB"))
    src = _jpeg_with_metadata(tmp_path / "geo.jpg", rgb)
    with Image.open(src) as im:
        assert im.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really has GPS
    report = Redactor(detector).redact(src).reports[0]
    assert report.output == tmp_path / "geo_redacted.jpg"
    with Image.open(report.output) as out:
        assert len(out.getexif()) == 0
        assert not {"exif", "icc_profile", "xmp", "comment"} & set(out.info)
    raw = report.output.read_bytes()
    for marker in (b"Exif", b"TestCam", b"secret-xmp", b"fake-icc", b"secret comment"):
        assert marker not in raw


def test_keep_metadata_keeps_exif_with_orientation_reset(detector, multiface: Path, tmp_path: Path):
    rgb = np.asarray(Image.open(multiface).convert("RGB"))
    src = _jpeg_with_metadata(tmp_path / "geo.jpg", np.ascontiguousarray(np.rot90(rgb, k=1)), orientation=6)
    out = Redactor(detector, RedactOptions(keep_metadata=True)).redact(src).reports[0].output
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif[ExifTags.Base.Make] == "TestCam"
        assert exif[ExifTags.Base.Orientation] == 1
        assert exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert im.size == (rgb.shape[1], rgb.shape[0])


def test_orientation_is_applied_before_detection_and_written_upright(detector, multiface: Path, tmp_path: Path):
    """The file stores the photo turned sideways with EXIF orientation 6 (rotate 90 CW to view)."""
    rgb = np.asarray(Image.open(multiface).convert("RGB"))
    src = _jpeg_with_metadata(tmp_path / "turned.jpg", np.ascontiguousarray(np.rot90(rgb, k=1)), orientation=6)
    report = Redactor(detector).redact(src).reports[0]
    upright = redact_image(rgb, detector)
    assert report.faces == len(upright.boxes) >= 5  # sideways faces would mostly be missed
    with Image.open(report.output) as out:
        assert out.size == (rgb.shape[1], rgb.shape[0])
        assert len(out.getexif()) == 0


def test_input_is_never_overwritten_and_existing_output_is_refused(engine, detector, multiface: Path, tmp_path: Path):
    src = tmp_path / "in.jpg"
    src.write_bytes(multiface.read_bytes())
    digest, mtime = hashlib.sha256(src.read_bytes()).hexdigest(), src.stat().st_mtime_ns
    redactor = Redactor.from_engine(engine)
    out = redactor.redact(src).reports[0].output
    assert out == tmp_path / "in_redacted.jpg" and out.is_file()
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest and src.stat().st_mtime_ns == mtime
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        redactor.redact(src)
    assert out.read_bytes() == before
    with pytest.raises(OutputExistsError):  # the input itself, even when overwriting is allowed
        Redactor(detector, RedactOptions(overwrite=True)).redact(src, src)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    Redactor(detector, RedactOptions(overwrite=True)).redact(src)
    assert out.is_file()


def test_detector_failure_writes_a_fully_obscured_photo(multiface: Path, tmp_path: Path):
    report = redact_photo(multiface, tmp_path / "out.png", RaisingDetector())
    assert report.obscured == 1 and report.error_code == "detection_failed"
    assert "simulated detector failure" in report.error
    out = np.asarray(Image.open(report.output))
    assert (out == out[0, 0]).all()  # one solid colour: nothing of the photo survives


def test_boxes_option_outlines_the_faces(detector, multiface: Path, tmp_path: Path):
    img = np.asarray(Image.open(multiface).convert("RGB"))
    plain = redact_image(img, detector)
    boxed = redact_image(img, detector, RedactOptions(draw_boxes=True))
    x, y, w, h = (int(round(v)) for v in boxed.boxes[0])
    assert (boxed.rgb[y, x:x + w] == [0, 230, 0]).all(axis=1).mean() > 0.8
    assert not (plain.rgb[y, x:x + w] == [0, 230, 0]).all(axis=1).any()


@pytest.mark.parametrize(
    ("content", "error"),
    [(b"", EmptyInputError), (b"not an image at all", UnsupportedFormatError), (None, CorruptImageError)],
)
def test_bad_photos_raise_and_write_nothing(detector, multiface: Path, tmp_path: Path, content, error):
    src = tmp_path / "bad.jpg"
    src.write_bytes(multiface.read_bytes()[:5000] if content is None else content)
    with pytest.raises(error):
        Redactor(detector).redact(src)
    assert not (tmp_path / "bad_redacted.jpg").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.jpg"]
