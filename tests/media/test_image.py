"""Image input: formats by magic bytes, EXIF orientation, caps, and every refusal."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceledger.errors import (
    CorruptImageError,
    EmptyInputError,
    FileTooLargeError,
    ImageTooLargeError,
    InputError,
    UnsupportedFormatError,
)
from faceledger.media.image import DecodedImage, ImageLimits, load_image, sniff_format


def encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def gradient() -> np.ndarray:
    h, w = 40, 60
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    arr[:10, :10] = (255, 0, 0)  # a red top-left corner, to check orientation
    return arr


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_decodes_supported_formats_to_rgb(gradient, fmt):
    img = load_image(encode(gradient, fmt, quality=95) if fmt != "PNG" else encode(gradient, fmt))
    assert isinstance(img, DecodedImage)
    assert img.rgb.shape == (40, 60, 3) and img.rgb.dtype == np.uint8
    assert img.format == fmt.lower()
    # Channel order is RGB: the corner is red.
    r, g, b = img.rgb[3, 3].astype(int)
    assert r > 200 and g < 60 and b < 60
    assert len(img.sha256) == 64


def test_format_is_recognised_by_content_not_name(gradient, tmp_path: Path):
    png_named_jpg = tmp_path / "photo.jpg"
    png_named_jpg.write_bytes(encode(gradient, "PNG"))
    assert load_image(png_named_jpg).format == "png"
    gif = tmp_path / "photo.png"
    Image.fromarray(gradient).save(gif, "GIF")
    with pytest.raises(UnsupportedFormatError):
        load_image(gif)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_formats_are_refused(gradient, fmt):
    with pytest.raises(UnsupportedFormatError):
        load_image(encode(gradient, fmt))


def test_sniff_format():
    assert sniff_format(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_format(b"\x89PNG\r\n\x1a\nrest") == "png"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_format(b"") is None


def test_empty_input_is_refused(tmp_path: Path):
    with pytest.raises(EmptyInputError):
        load_image(b"")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(EmptyInputError):
        load_image(empty)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_refused(gradient, fmt):
    data = encode(gradient, fmt)
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) // 2])


def test_garbage_after_magic_is_refused():
    with pytest.raises(CorruptImageError):
        load_image(b"\xff\xd8\xff" + b"\x00" * 200)


def test_file_size_cap(gradient, tmp_path: Path):
    data = encode(gradient, "PNG")
    limits = ImageLimits(max_bytes=len(data) - 1)
    with pytest.raises(FileTooLargeError):
        load_image(data, limits)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    with pytest.raises(FileTooLargeError):
        load_image(path, limits)
    assert load_image(path, ImageLimits(max_bytes=len(data))).width == 60


def test_pixel_cap_checked_before_decoding(gradient):
    with pytest.raises(ImageTooLargeError):
        load_image(encode(gradient, "JPEG"), ImageLimits(max_pixels=40 * 60 - 1))
    with pytest.raises(ImageTooLargeError):
        load_image(gradient, ImageLimits(max_pixels=100))


def test_decompression_bomb_never_allocates(tmp_path: Path):
    # A 10000x10000 PNG of one colour compresses to ~300 KB but would need 300 MB decoded.
    import zlib

    w = h = 10000
    comp = zlib.compressobj(9)
    row = b"\x00" * (w * 3 + 1)  # filter byte + one black row
    raw = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    assert len(bomb) < 2_000_000
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageTooLargeError):
        load_image(bomb)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 200_000  # KB: nowhere near the 300 MB a decode would take


def test_exif_orientation_is_applied(gradient):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display upright
    data = encode(gradient, "JPEG", quality=95, exif=exif)
    img = load_image(data)
    assert img.rgb.shape == (60, 40, 3)
    # The red corner moves from top-left to top-right.
    assert img.rgb[3, 36, 0] > 200 and img.rgb[3, 3, 0] < 200


def test_arrays_are_accepted_and_validated(gradient):
    assert load_image(gradient).format == "array"
    grey = gradient[..., 0]
    assert load_image(grey).rgb.shape == (40, 60, 3)
    rgba = np.dstack([gradient, np.full(gradient.shape[:2], 255, np.uint8)])
    assert load_image(rgba).rgb.shape == (40, 60, 3)
    with pytest.raises(InputError):
        load_image(gradient.astype(np.float32))
    with pytest.raises(InputError):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(CorruptImageError):
        load_image(np.zeros((0, 4, 3), np.uint8))


def test_decoded_pixels_are_read_only(gradient):
    img = load_image(encode(gradient, "PNG"))
    with pytest.raises(ValueError):
        img.rgb[0, 0, 0] = 1


def test_missing_file_folder_and_wrong_type(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(InputError):
        load_image(12345)  # type: ignore[arg-type]


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        ImageLimits(max_bytes=0)
