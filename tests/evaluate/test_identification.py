"""1:N metrics: the gallery/probe split, rank-k and FNIR at FPIR, checked by brute force on real LFW photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceledger.evaluate.dataset import load_dataset
from faceledger.evaluate.identification import evaluate_identification, split_gallery
from faceledger.evaluate.templates import TemplateCache, compute_templates
from faceledger.recognizer import Recognizer


def test_split_enrols_one_photo_per_repeated_subject_and_halves_the_singles() -> None:
    subjects = np.array([0, 0, 0, 1, 1, 2, 3, 4, 5])
    s = split_gallery(subjects, seed=1)
    assert set(subjects[s.mated]) == {0, 1} and s.mated.size == 3
    singles_in_gallery = set(subjects[s.gallery]) - {0, 1}
    assert len(singles_in_gallery) == 2 and len(set(subjects[s.nonmated])) == 2
    assert not singles_in_gallery & set(subjects[s.nonmated])
    assert np.array_equal(split_gallery(subjects, seed=1).nonmated, s.nonmated)


def test_ranks_and_failures_on_hand_made_vectors() -> None:
    """Four subjects in 2-D; the probe of subject 1 is closer to subject 0's gallery photo."""
    ang = np.array([0.0, 0.05, 1.0, 0.1, 2.0, 2.05, 3.0])  # photos: 0 0 1 1 2 2 3
    v = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    subjects = np.array([0, 0, 1, 1, 2, 2, 3])
    ok = np.ones(7, bool)
    r = evaluate_identification(v, ok, subjects, threshold=0.9, ranks=(1, 2), fpir_targets=())
    assert r.mated_probes == 3 and r.rank_hit_rates == {1: pytest.approx(2 / 3), 2: 1.0}
    ok[5] = False  # subject 2's probe has no face: a miss, never dropped
    r = evaluate_identification(v, ok, subjects, threshold=0.9, ranks=(1,), fpir_targets=())
    assert r.failed_probes == 1 and r.rank_hit_rates[1] == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def real(testdata: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.getbasetemp() / "small_lfw_ident"
    folder.mkdir(exist_ok=True)
    lines = (testdata / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    (folder / "pairs.txt").write_text("\n".join(["50", *lines[:50], *lines[300:350]]) + "\n")
    if not (folder / "images").exists():
        (folder / "images").symlink_to(testdata / "lfw" / "images", target_is_directory=True)
    ds = load_dataset(folder)
    with TemplateCache(tmp_path_factory.getbasetemp() / "template_cache") as cache:
        t = compute_templates(Recognizer(), ds.root, ds.keys, cache, progress=False)
    return t, np.unique(np.asarray(ds.identities), return_inverse=True)[1]


def test_real_lfw_matches_brute_force(real) -> None:  # noqa: ANN001
    t, subjects = real
    threshold = 0.36
    r = evaluate_identification(t.vectors, t.ok, subjects, threshold, ranks=(1, 3), fpir_targets=(0.1,), seed=4)
    s = split_gallery(subjects, seed=4)
    gal = list(s.gallery)
    hit1 = hit3 = fnir = 0
    for p in s.mated:  # brute force, one probe at a time
        scores = [float(np.dot(t.vectors[p], t.vectors[g])) for g in gal]
        mate = next(j for j, g in enumerate(gal) if subjects[g] == subjects[p])
        rank = sum(x >= scores[mate] for x in scores)
        hit1 += rank == 1
        hit3 += rank <= 3
        fnir += not (rank == 1 and scores[mate] >= threshold)
    assert r.rank_hit_rates[1] == pytest.approx(hit1 / len(s.mated))
    assert r.rank_hit_rates[3] == pytest.approx(hit3 / len(s.mated))
    assert r.at_threshold["fnir"] == pytest.approx(fnir / len(s.mated))
    top = [max(float(np.dot(t.vectors[p], t.vectors[g])) for g in gal) for p in s.nonmated]
    assert r.at_threshold["fpir"] == pytest.approx(np.mean(np.array(top) >= threshold))
    point = r.fnir_at_fpir["fpir0.1"]
    if point["supported"]:
        assert point["fpir"] <= 0.1
    else:
        assert len(top) * 0.1 < 10
