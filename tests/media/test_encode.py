"""Writing images: bytes and files, upright pixels only, never over an existing file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from faceledger.errors import InputError
from faceledger.media.encode import encode_image, save_image
from faceledger.media.image import load_image


def _gradient() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(("fmt", "lossless"), [("png", True), ("jpeg", False), ("webp", False)])
def test_encode_image_round_trips_without_metadata(fmt: str, lossless: bool) -> None:
    rgb = _gradient()
    data = encode_image(rgb, fmt)
    decoded = load_image(data)
    assert decoded.format == fmt
    assert decoded.rgb.shape == rgb.shape
    if lossless:
        assert np.array_equal(decoded.rgb, rgb)
    else:
        assert np.abs(decoded.rgb.astype(int) - rgb).mean() < 4
    with Image.open(io.BytesIO(data)) as im:
        assert not im.getexif()
        assert "icc_profile" not in im.info and "xmp" not in im.info


def test_encode_image_refuses_unknown_format() -> None:
    with pytest.raises(InputError, match="jpeg, png or webp"):
        encode_image(_gradient(), "gif")


def test_save_image_never_overwrites(tmp_path) -> None:
    path = save_image(tmp_path / "a.png", _gradient())
    with pytest.raises(InputError, match="already exists"):
        save_image(path, _gradient())
    save_image(path, np.zeros((4, 4, 3), np.uint8), overwrite=True)
    assert load_image(path).rgb.shape == (4, 4, 3)
    with pytest.raises(InputError, match="must end in"):
        save_image(tmp_path / "a.gif", _gradient())
