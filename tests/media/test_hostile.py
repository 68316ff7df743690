"""Hostile inputs to the decoder (issue 14, rows 2, 3 and 5; issue 12's truncated large JPEG)."""

from __future__ import annotations

import io
import os
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from faceledger._cv import cv2
from faceledger.errors import CorruptImageError, FileTooLargeError, ImageTooLargeError, InputError
from faceledger.media.image import MAX_SIDE, ImageLimits, load_image


def png_of_size(width: int, height: int) -> bytes:
    """A valid, tiny PNG of one black colour and any size (built by hand, nothing decoded)."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width * 3 + 1)
    raw = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(32767, 20), (20, 32767), (40000, 1)])
def test_a_side_of_32767_or_more_is_refused_on_the_header(size):
    data = png_of_size(*size)
    assert len(data) < 4096
    with pytest.raises(ImageTooLargeError) as info:
        load_image(data)
    assert info.value.code == "image_too_large" and "side" in info.value.message
    assert info.value.details["limit"] == MAX_SIDE
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((2, MAX_SIDE + 1), np.uint8))


def test_the_longest_accepted_side_decodes():
    img = load_image(png_of_size(MAX_SIDE, 20))
    assert img.rgb.shape == (20, MAX_SIDE, 3)


def test_recognizer_refuses_a_wide_image_before_any_model_runs(engine):
    calls = []
    real = engine.backend.detector.detect
    try:
        object.__setattr__(engine.backend, "detector", _Spy(real, calls))
        with pytest.raises(ImageTooLargeError):
            engine.detect(png_of_size(32767, 20))
        with pytest.raises(ImageTooLargeError):
            engine.verify(png_of_size(32767, 20), png_of_size(32767, 20))
    finally:
        object.__setattr__(engine.backend, "detector", real.__self__)
    assert calls == []


class _Spy:
    """Records that the detector ran (a seam for the one fact under test: it must not run)."""

    name = "spy"

    def __init__(self, real, calls: list) -> None:
        self._real, self._calls = real, calls

    def detect(self, rgb, options):
        self._calls.append(rgb.shape)
        return self._real(rgb, options)


def _in_thread(fn, timeout: float = 10.0):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the read blocked"
    return out


def test_devices_are_not_read():
    out = _in_thread(lambda: load_image("/dev/zero"))
    assert isinstance(out.get("error"), InputError)
    assert "regular file" in str(out["error"])


def test_a_fifo_is_refused_without_blocking(tmp_path: Path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    out = _in_thread(lambda: load_image(fifo))
    assert isinstance(out.get("error"), InputError)
    assert "regular file" in str(out["error"])


def test_the_byte_cap_applies_to_what_is_read_not_to_what_stat_says():
    # /proc files are regular files that stat as 0 bytes and yield more when read.
    out = _in_thread(lambda: load_image("/proc/self/maps", ImageLimits(max_bytes=64)))
    assert isinstance(out.get("error"), FileTooLargeError)


def test_16_bit_grey_png_is_scaled_to_8_bits():
    g16 = np.linspace(0, 65535, 64 * 256).reshape(64, 256).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(g16).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I;16")
    rgb = load_image(buf.getvalue()).rgb
    expected = (g16 / 257.0).round()
    assert np.abs(rgb[..., 0].astype(float) - expected).max() <= 1
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_16_bit_colour_png_is_scaled_to_8_bits():
    rng = np.random.default_rng(1)
    rgb16 = rng.integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    ok, enc = cv2.imencode(".png", rgb16[:, :, ::-1])  # OpenCV writes BGR
    assert ok
    rgb = load_image(enc.tobytes()).rgb
    assert np.abs(rgb.astype(float) - (rgb16 / 257.0).round()).max() <= 1


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (300, 450, 3), dtype=np.uint8)
    big = cv2.resize(small, (4500, 3000), interpolation=cv2.INTER_LINEAR)
    ok, enc = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return enc.tobytes()


@pytest.mark.parametrize("keep", [600, 5000, 0.5, 0.99])
def test_truncated_large_jpeg_is_refused_not_filled_with_grey(big_jpeg: bytes, keep):
    cut = keep if isinstance(keep, int) else int(len(big_jpeg) * keep)
    for data in (big_jpeg[:cut], big_jpeg[:cut] + b"\xff\xd9"):  # with and without an end marker
        with pytest.raises(CorruptImageError) as info:
            load_image(data)
        assert "0x" not in info.value.message and "<" not in info.value.message


def test_large_jpeg_decodes_at_reduced_scale_when_asked(big_jpeg: bytes):
    full = load_image(big_jpeg)
    half = load_image(big_jpeg, max_side=2000)
    eighth = load_image(big_jpeg, max_side=100)
    assert full.rgb.shape == (3000, 4500, 3) and full.scale == 1.0
    assert half.rgb.shape == (1500, 2250, 3) and half.scale == 0.5 and half.full_size == (4500, 3000)
    assert eighth.rgb.shape == (375, 563, 3) and eighth.full_size == (4500, 3000)
    assert full.sha256 == half.sha256
    small = cv2.resize(full.rgb, (2250, 1500), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - half.rgb.astype(int)).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(orientation: int):
    rng = np.random.default_rng(orientation)
    arr = cv2.resize(rng.integers(0, 256, (6, 9, 3), dtype=np.uint8), (90, 60), interpolation=cv2.INTER_NEAREST)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=98, exif=exif)
    ours = load_image(buf.getvalue()).rgb
    theirs = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))).convert("RGB"))
    assert ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 2


def test_broken_exif_is_ignored_not_fatal():
    arr = np.full((20, 30, 3), 90, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\xff\xff\xff\xff")
    assert load_image(buf.getvalue()).rgb.shape == (20, 30, 3)


def test_a_png_chunk_declaring_more_bytes_than_the_file_holds_allocates_nothing():
    """Found by bench/fuzz.py: OpenCV allocated a chunk's declared length (2 GB for a 56-byte file)."""
    import resource

    head = png_of_size(30000, 1)[:33]  # signature + IHDR
    data = head + (0x7F00006E).to_bytes(4, "big") + b"IDAT" + b"\x00" * 11
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CorruptImageError):
        load_image(data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB
