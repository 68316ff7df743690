"""The decode-and-detect fuzz target and its mutators (used by the test suite and ``bench/fuzz.py``).

The contract under test: for any bytes, ``Recognizer.load`` + ``Recognizer.detect``
either return faces that are finite and inside the image, or raise an
:class:`~faceledger.errors.InputError` with a stable code and a fixed text (no
addresses, no reprs). Anything else (another exception, a crash, a hang) is a finding.
"""

from __future__ import annotations

import math
import random
import re
import struct
import zlib
from pathlib import Path

from faceledger.errors import InputError

CORPUS = Path(__file__).resolve().parent / "corpus"
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}|<[^>]*object at")


def corpus() -> dict[str, bytes]:
    """Seed name -> bytes, from ``tests/fuzz/corpus`` (written by ``make_corpus.py``)."""
    return {p.name: p.read_bytes() for p in sorted(CORPUS.iterdir()) if p.is_file()}


def decode_and_detect(recognizer, data: bytes) -> str:
    """Run the target on ``data``; return the outcome (``faces:N`` or an error code).

    Raises AssertionError when the contract is broken; any exception that is not an
    InputError propagates (a crash of the target).
    """
    try:
        image = recognizer.load(data, for_search=True)
        faces = recognizer.detect(image)
    except InputError as exc:
        assert exc.code and exc.code != "faceledger_error", exc
        assert not _ADDRESS.search(exc.message), exc.message
        return exc.code
    width, height = image.full_size
    for f in faces:
        x, y, w, h = f.box.as_tuple()
        assert all(math.isfinite(v) for v in (x, y, w, h, f.score)), f
        assert x >= 0 and y >= 0 and w > 0 and h > 0, f
        assert x + w <= width + 1e-3 and y + h <= height + 1e-3, (f, width, height)
    return f"faces:{len(faces)}"


# -- mutators ------------------------------------------------------------------------------------
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF)


def mutate(data: bytes, rng: random.Random, other: bytes = b"", rounds: int = 0) -> bytes:
    """Apply 1-4 random mutations (bit flips, interesting bytes, truncation, insertion,
    deletion, duplication, splicing with ``other``, size fields of PNG/JPEG headers)."""
    buf = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(buf)
        if n == 0:
            buf += bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            continue
        i = rng.randrange(n)
        if op == 0:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[i] = rng.choice(_INTERESTING)
        elif op == 2:
            del buf[rng.randrange(n):]
        elif op == 3:
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif op == 4:
            del buf[i : i + rng.randint(1, 256)]
        elif op == 5:
            j = rng.randrange(n)
            buf[i:i] = buf[j : j + rng.randint(1, 512)]
        elif op == 6 and other:
            j = rng.randrange(len(other))
            buf = buf[:i] + bytearray(other[j:])
        elif op == 7:
            _size_field(buf, rng)
        else:
            buf[i : i + 4] = struct.pack(">I", rng.choice((0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)))
    if buf[:8] == b"\x89PNG\r\n\x1a\n" and rng.random() < 0.5:
        _fix_png_crcs(buf)  # half the PNG cases get past libpng's checksums to the decoder proper
    return bytes(buf)


def _fix_png_crcs(buf: bytearray) -> None:
    at = 8
    while at + 12 <= len(buf):
        length = struct.unpack(">I", buf[at : at + 4])[0]
        end = at + 8 + length
        if end + 4 > len(buf):
            return
        buf[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(buf[at + 4 : end])))
        at = end + 4


def _size_field(buf: bytearray, rng: random.Random) -> None:
    """Rewrite the width/height of a PNG IHDR or a JPEG SOF0/SOF2 (the bomb and overflow cases)."""
    value = rng.choice((0, 1, 2, 16, 32766, 32767, 32768, 65535, 100_000, 2**31 - 1))
    if buf[:8] == b"\x89PNG\r\n\x1a\n" and len(buf) >= 24:
        at = rng.choice((16, 20))
        buf[at : at + 4] = struct.pack(">I", value)
        return
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        k = buf.find(marker)
        if k >= 0 and len(buf) >= k + 9:
            at = rng.choice((k + 5, k + 7))
            buf[at : at + 2] = struct.pack(">H", min(value, 65535))
            return
