"""No accuracy regression: LFW View 2 pairs verified end to end with default arguments (issue 12).

150 genuine and 150 impostor pairs of fold 1, through ``Recognizer.verify`` exactly as a
user calls it (default face choice, the packaged fmr1e-3 threshold). The full protocol
is ``bench/lfw_accuracy.py`` (99.42% +- 0.40% on View 2); this subset guards the
pipeline (decode, coarse-to-fine detection, face choice, alignment) against a drop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faceledger.errors import MultipleFacesError
from faceledger.evaluate.lfw import read_pairs


@pytest.mark.slow
def test_lfw_fold_1_subset_accuracy_with_defaults(engine, testdata: Path):
    pairs = [p for p in read_pairs(testdata / "lfw" / "pairs.txt").pairs if p.fold == 0]
    subset = [p for p in pairs if p.same][:150] + [p for p in pairs if not p.same][:150]
    images = testdata / "lfw" / "images"
    cache: dict[str, object] = {}

    def template(key: str):
        if key not in cache:
            try:
                cache[key] = engine.template(images / key)
            except MultipleFacesError:
                cache[key] = None
        return cache[key]

    correct = refused = 0
    for p in subset:
        ta, tb = template(p.a), template(p.b)
        if ta is None or tb is None:
            refused += 1
            continue
        correct += engine.verify(ta, tb).match == p.same
    assert refused <= 3  # <= 1%
    decided = len(subset) - refused
    assert correct / decided >= 0.985, (correct, decided)
