"""Write the fuzz corpus (``tests/fuzz/corpus/``): small generated files, no photos.

Seeds for the decode-and-detect fuzz target: valid images of every accepted format and
colour mode, and hostile ones (malformed, truncated, polyglot, decompression bombs,
extreme sizes, EXIF edge cases). Every file is made here from arrays and hand-built
bytes, deterministically; rerun after changing it::

    .venv/bin/python tests/fuzz/make_corpus.py
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent / "corpus"
RNG = np.random.default_rng(20261204)


def face_like(h: int = 96, w: int = 96) -> np.ndarray:
    """A smooth synthetic pattern with face-like blobs (two dark eyes, a mouth) on skin tone."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32) + (200, 160, 130)
    for cx, cy, r in ((0.35, 0.4, 0.07), (0.65, 0.4, 0.07), (0.5, 0.72, 0.1)):
        d = ((xx - cx * w) ** 2 + (yy - cy * h) ** 2) / (r * min(h, w)) ** 2
        img -= (np.exp(-d) * 150)[..., None]
    return np.clip(img + RNG.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def pil_bytes(arr: np.ndarray | Image.Image, fmt: str, **kw) -> bytes:
    im = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int, depth: int = 8, colour: int = 2, idat: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    comp = zlib.compressobj(9)
    row = b"\x00" * (width * 3 + 1)
    raw = b"".join(comp.compress(row) for _ in range(min(height, 4000))) + comp.flush()
    return png_header_only(width, height, idat=raw)


def exif_jpeg(entries: bytes, count: int, byte_order: bytes = b"MM") -> bytes:
    """A JPEG whose APP1 EXIF block holds ``count`` raw IFD entries (12 bytes each)."""
    tiff = byte_order + (b"\x00\x2a\x00\x00\x00\x08" if byte_order == b"MM" else b"\x2a\x00\x08\x00\x00\x00")
    pack = ">H" if byte_order == b"MM" else "<H"
    return pil_bytes(face_like(), "JPEG", exif=b"Exif\x00\x00" + tiff + struct.pack(pack, count) + entries + b"\0" * 4)


def orientation_entry(value: int, kind: int = 3, count: int = 1) -> bytes:
    return struct.pack(">HHIHH", 0x0112, kind, count, value, 0)


def cases() -> dict[str, Callable[[], bytes]]:
    base = face_like()
    grey = base[..., 0]
    jpeg = pil_bytes(base, "JPEG", quality=85)
    png = pil_bytes(base, "PNG")
    webp = pil_bytes(base, "WEBP", quality=80)
    c: dict[str, Callable[[], bytes]] = {
        # valid, every format and colour mode
        "ok_rgb.jpg": lambda: jpeg,
        "ok_progressive.jpg": lambda: pil_bytes(base, "JPEG", quality=85, progressive=True),
        "ok_grey.jpg": lambda: pil_bytes(grey, "JPEG"),
        "ok_cmyk.jpg": lambda: pil_bytes(Image.fromarray(base).convert("CMYK"), "JPEG"),
        "ok_subsampling444.jpg": lambda: pil_bytes(base, "JPEG", subsampling=0),
        "ok_rgb.png": lambda: png,
        "ok_rgba.png": lambda: pil_bytes(np.dstack([base, np.full(base.shape[:2], 128, np.uint8)]), "PNG"),
        "ok_grey.png": lambda: pil_bytes(grey, "PNG"),
        "ok_grey_alpha.png": lambda: pil_bytes(Image.fromarray(grey).convert("LA"), "PNG"),
        "ok_palette.png": lambda: pil_bytes(Image.fromarray(base).convert("P"), "PNG"),
        "ok_bilevel.png": lambda: pil_bytes(Image.fromarray(grey).convert("1"), "PNG"),
        "ok_grey16.png": lambda: pil_bytes(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"),
        "bad_interlace_flag.png": lambda: _interlaced_png(base),
        "ok_rgb.webp": lambda: webp,
        "ok_lossless.webp": lambda: pil_bytes(base, "WEBP", lossless=True),
        "ok_rgba.webp": lambda: pil_bytes(np.dstack([base, np.full(base.shape[:2], 200, np.uint8)]), "WEBP"),
        # extreme sizes
        "size_1x1.png": lambda: pil_bytes(np.zeros((1, 1, 3), np.uint8), "PNG"),
        "size_2x2.jpg": lambda: pil_bytes(np.full((2, 2, 3), 77, np.uint8), "JPEG"),
        "size_wide_4000x20.png": lambda: pil_bytes(np.tile(base[:20], (1, 42, 1))[:, :4000], "PNG"),
        "size_tall_20x4000.jpg": lambda: pil_bytes(np.tile(base[:, :20], (42, 1, 1))[:4000], "JPEG"),
        "size_32767x20.png": lambda: png_bomb(32767, 20),
        "size_20x32767.png": lambda: png_bomb(20, 32767),
        "size_30000x1.png": lambda: png_bomb(30000, 1),
        "size_1x30000.png": lambda: png_bomb(1, 30000),
        "size_zero_width.png": lambda: png_header_only(0, 10),
        "size_huge_header.png": lambda: png_header_only(2**31 - 1, 2**31 - 1),
        "size_65500_header.jpg": lambda: _jpeg_with_size(jpeg, 65500, 65500),
        # bombs
        "bomb_10000x10000.png": lambda: png_bomb(10000, 10000),
        "bomb_6000x6000.png": lambda: png_bomb(6000, 6000),
        "bomb_webp_16383.webp": lambda: _webp_vp8x_header(16383, 16383),
        "bomb_chunk_length.png": lambda: png_bomb(30000, 1)[:33] + struct.pack(">I", 0x7F00006E) + b"IDAT" + b"\0" * 11,
        # truncated
        "trunc_jpeg_header.jpg": lambda: jpeg[:200],
        "trunc_jpeg_half.jpg": lambda: jpeg[: len(jpeg) // 2],
        "trunc_jpeg_half_eoi.jpg": lambda: jpeg[: len(jpeg) // 2] + b"\xff\xd9",
        "trunc_large_jpeg_eoi.jpg": lambda: _large_truncated_jpeg(),
        "trunc_png_half.png": lambda: png[: len(png) // 2],
        "trunc_png_no_iend.png": lambda: png[:-12],
        "trunc_webp.webp": lambda: webp[: len(webp) // 2],
        "trunc_magic_only.jpg": lambda: b"\xff\xd8\xff",
        "trunc_png_magic_only.png": lambda: b"\x89PNG\r\n\x1a\n",
        # malformed
        "bad_png_crc.png": lambda: png[:29] + bytes([png[29] ^ 0xFF]) + png[30:],
        "bad_png_depth.png": lambda: png_header_only(10, 10, depth=7, idat=zlib.compress(b"\0" * 400)),
        "bad_png_colour.png": lambda: png_header_only(10, 10, colour=5, idat=zlib.compress(b"\0" * 400)),
        "bad_jpeg_garbage.jpg": lambda: b"\xff\xd8\xff" + RNG.integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "bad_jpeg_no_sos.jpg": lambda: jpeg[: jpeg.index(b"\xff\xda")] + b"\xff\xd9",
        "bad_webp_riff_size.webp": lambda: webp[:4] + b"\xff\xff\xff\x7f" + webp[8:],
        "bad_random.bin": lambda: RNG.integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "bad_gif.gif": lambda: pil_bytes(base, "GIF"),
        "bad_bmp.bmp": lambda: pil_bytes(base, "BMP"),
        "bad_tiff.tif": lambda: pil_bytes(base, "TIFF"),
        "bad_empty.jpg": lambda: b"",
        # polyglots
        "poly_jpeg_zip.jpg": lambda: jpeg + _zip_bytes(),
        "poly_png_then_jpeg.png": lambda: png + jpeg,
        "poly_jpeg_in_png_chunk.png": lambda: png[:33] + png_chunk(b"tEXt", b"x\0" + jpeg[:500]) + png[33:],
        "poly_html_after_png.png": lambda: png + b"<html><script>alert(1)</script></html>",
        "poly_riff_wave_webp.webp": lambda: b"RIFF" + webp[4:8] + b"WAVE" + webp[12:],
        # EXIF edge cases
        "exif_orientation_6.jpg": lambda: exif_jpeg(orientation_entry(6), 1),
        "exif_orientation_8.jpg": lambda: exif_jpeg(orientation_entry(8), 1),
        "exif_orientation_0.jpg": lambda: exif_jpeg(orientation_entry(0), 1),
        "exif_orientation_9.jpg": lambda: exif_jpeg(orientation_entry(9), 1),
        "exif_orientation_65535.jpg": lambda: exif_jpeg(orientation_entry(65535), 1),
        "exif_orientation_as_string.jpg": lambda: exif_jpeg(orientation_entry(6, kind=2, count=4), 1),
        "exif_orientation_intel.jpg": lambda: exif_jpeg(struct.pack("<HHIHH", 0x0112, 3, 1, 5, 0), 1, b"II"),
        "exif_huge_count.jpg": lambda: exif_jpeg(orientation_entry(6), 65535),
        "exif_offset_loop.jpg": lambda: exif_jpeg(struct.pack(">HHII", 0x8769, 4, 1, 8), 1),
        "exif_truncated.jpg": lambda: pil_bytes(base, "JPEG", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00"),
        "exif_not_tiff.jpg": lambda: pil_bytes(base, "JPEG", exif=b"Exif\x00\x00garbage-not-tiff"),
        "exif_png_chunk.png": lambda: _png_with_exif(png, orientation_entry(6)),
        "exif_webp.webp": lambda: pil_bytes(base, "WEBP", exif=_exif_block(orientation_entry(3))),
    }
    return c


def _exif_block(entry: bytes) -> bytes:
    return b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + entry + b"\0" * 4


def _png_with_exif(png: bytes, entry: bytes) -> bytes:
    return png[:33] + png_chunk(b"eXIf", _exif_block(entry)[6:]) + png[33:]


def _interlaced_png(arr: np.ndarray) -> bytes:
    """A non-interlaced file whose header says Adam7 (Pillow writes no interlaced PNG): malformed."""
    data = pil_bytes(arr, "PNG")
    patched = data[16:28] + b"\x01"
    return data[:8] + png_chunk(b"IHDR", patched) + data[33:]


def _jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    i = jpeg.index(b"\xff\xc0")
    return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]


def _large_truncated_jpeg() -> bytes:
    big = np.repeat(np.repeat(face_like(60, 90), 40, axis=0), 40, axis=1)  # 3600x2400
    data = pil_bytes(big, "JPEG", quality=60)
    return data[:6000] + b"\xff\xd9"


def _webp_vp8x_header(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + \
        (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.txt", "not an image")
    return buf.getvalue()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    total = 0
    for name, make in cases().items():
        data = make()
        (OUT / name).write_bytes(data)
        total += len(data)
    print(f"{len(cases())} files, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
