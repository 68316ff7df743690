"""``faceledger.detect`` / ``faceledger.verify``: one lazily loaded Recognizer per backend, thread-safe."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import faceledger
from faceledger import recognizer as recognizer_module

PAIRS = [
    ("Jean_Charest/Jean_Charest_0001.jpg", "Jean_Charest/Jean_Charest_0002.jpg"),
    ("Bertrand_Bonello/Bertrand_Bonello_0001.jpg", "Bertrand_Bonello/Bertrand_Bonello_0002.jpg"),
    ("Jean_Charest/Jean_Charest_0001.jpg", "Bertrand_Bonello/Bertrand_Bonello_0002.jpg"),
]


@pytest.fixture()
def loads(monkeypatch):
    """Count backend loads, starting from an empty module-level cache."""
    count: list[str] = []
    real = recognizer_module.load_backend

    def counting(name, **options):
        count.append(name)
        return real(name, **options)

    monkeypatch.setattr(recognizer_module, "load_backend", counting)
    monkeypatch.setattr(faceledger, "_SHARED", {})
    return count


def test_models_load_once_for_repeated_calls(loads, lfw: Path):
    a, b = (lfw / p for p in PAIRS[0])
    first = faceledger.verify(a, b, face_a="center", face_b="center")
    for _ in range(3):
        again = faceledger.verify(a, b, face_a="center", face_b="center")
        assert again.score == first.score
    assert len(faceledger.detect(a)) >= 1
    assert loads == ["yunet-sface"]


def test_module_functions_agree_with_a_held_recognizer(loads, engine, lfw: Path):
    for pa, pb in PAIRS:
        ours = faceledger.verify(lfw / pa, lfw / pb, face_a="center", face_b="center")
        held = engine.verify(lfw / pa, lfw / pb, face_a="center", face_b="center")
        assert ours.score == pytest.approx(held.score, abs=1e-6) and ours.match == held.match


def test_concurrent_calls_share_one_recognizer_and_give_the_sequential_answers(loads, lfw: Path):
    expected = [faceledger.verify(lfw / a, lfw / b, face_a="center", face_b="center").score for a, b in PAIRS]
    assert loads == ["yunet-sface"]
    loads.clear()
    faceledger._SHARED.clear()  # the threads race to load it first
    results: dict[tuple[int, int], float] = {}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i, (a, b) in enumerate(PAIRS):
                results[(t, i)] = faceledger.verify(lfw / a, lfw / b, face_a="center", face_b="center").score
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors and len(results) == 4 * len(PAIRS)
    assert loads == ["yunet-sface"]
    for (_, i), score in results.items():
        assert np.isclose(score, expected[i], atol=1e-6)
