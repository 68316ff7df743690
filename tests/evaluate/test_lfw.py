"""LFW protocol files, the extended sets, the template cache, and a small real end-to-end check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from faceledger.core import metrics
from faceledger.errors import ConfigError
from faceledger.evaluate.lfw import (
    FAILED_SCORE,
    Pair,
    dataset_digest,
    extended_scores,
    identity_of,
    image_key,
    pair_scores,
    read_pairs,
)
from faceledger.evaluate.templates import TemplateCache, check_cache, compute_templates, variant_of

# -- protocol files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "per_side", "folds"),
    [("pairs.txt", 3000, 10), ("pairsDevTrain.txt", 1100, 1), ("pairsDevTest.txt", 500, 1)],
)
def test_real_pairs_files(testdata: Path, name: str, per_side: int, folds: int) -> None:
    ps = read_pairs(testdata / "lfw" / name)
    assert (ps.n_genuine, ps.n_impostor, ps.n_folds) == (per_side, per_side, folds)
    for fold in range(folds):
        in_fold = [p for p in ps.pairs if p.fold == fold]
        assert sum(p.same for p in in_fold) == len(in_fold) // 2 == per_side // folds
    for p in ps.pairs:
        assert (identity_of(p.a) == identity_of(p.b)) == p.same and p.a != p.b
    assert all((testdata / "lfw" / "images" / k).is_file() for k in ps.images())


def test_view1_parts_share_no_person(testdata: Path) -> None:
    train = {identity_of(k) for k in read_pairs(testdata / "lfw" / "pairsDevTrain.txt").images()}
    test = {identity_of(k) for k in read_pairs(testdata / "lfw" / "pairsDevTest.txt").images()}
    assert train and test and not train & test


def test_first_lines_of_view2(testdata: Path) -> None:
    ps = read_pairs(testdata / "lfw" / "pairs.txt")
    first_line = (testdata / "lfw" / "pairs.txt").read_text().splitlines()[1].split()
    assert ps.pairs[0] == Pair(
        image_key(first_line[0], int(first_line[1])), image_key(first_line[0], int(first_line[2])), True, 0
    )
    assert image_key("George_W_Bush", 10) == "George_W_Bush/George_W_Bush_0010.jpg"


@pytest.mark.parametrize(
    "text",
    ["", "x\n", "1\nA 1 2\n", "1\nA 1 B 2\nA 1 2\n", "1\nA 1 2\nA one B 2\n", "2 1\nA 1 2\nB 1 C 1\n"],
)
def test_malformed_pairs_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(ConfigError):
        read_pairs(path)


def test_dataset_digest_depends_on_file_and_images(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("1\nA 1 2\nA 1 B 1\n")
    d = dataset_digest(f, ["bb", "aa"])
    assert d == dataset_digest(f, ["aa", "bb"]) != dataset_digest(f, ["aa", "cc"])
    f.write_text("1\nA 1 3\nA 1 B 1\n")
    assert dataset_digest(f, ["aa", "bb"]) != d


# -- extended sets (logic, on synthetic unit vectors) -------------------------------------


def test_extended_scores_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    people = (("A", 3), ("B", 1), ("C", 2), ("D", 4))
    keys = [image_key(name, n) for name, count in people for n in range(1, count + 1)]
    v = rng.normal(size=(len(keys), 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ok = np.ones(len(keys), bool)
    ok[keys.index("D/D_0002.jpg")] = False
    ext = extended_scores(keys, v, ok, block=3)
    gen, imp = [], []
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            s = float(v[a] @ v[b]) if ok[a] and ok[b] else FAILED_SCORE
            (gen if identity_of(keys[a]) == identity_of(keys[b]) else imp).append(s)
    np.testing.assert_allclose(np.sort(ext.genuine), np.sort(gen), atol=1e-6)
    np.testing.assert_allclose(np.sort(ext.impostor), np.sort(imp), atol=1e-6)
    assert (ext.genuine.size, ext.impostor.size) == (3 + 1 + 6, 45 - 10)
    assert (ext.genuine_failed, ext.impostor_failed) == (3, 6) and ext.n_people_with_pairs == 3
    sampled = extended_scores(keys, v, ok, max_impostors=10, seed=1)
    assert sampled.impostor.size == 10 and sampled.impostor_total == 35
    assert set(np.round(sampled.impostor, 5)) <= set(np.round(ext.impostor, 5))


# -- real templates, the cache and an end-to-end check ------------------------------------


class CountingEmbedder:
    """Wraps a real embedder and counts its calls (to prove a cache hit makes none)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0
        self.name, self.dimension = inner.name, inner.dimension

    def embed(self, rgb, boxes, landmarks):
        self.calls += 1
        return self.inner.embed(rgb, boxes, landmarks)


@pytest.fixture(scope="module")
def counting_recognizer():
    from faceledger.models.registry import load_backend
    from faceledger.recognizer import Recognizer

    backend = load_backend("yunet-sface")
    embedder = CountingEmbedder(backend.embedder)
    return Recognizer(dataclasses.replace(backend, embedder=embedder), threads=2), embedder


@pytest.fixture(scope="module")
def devtest_sample(testdata: Path, counting_recognizer, tmp_path_factory):
    """20 genuine + 20 impostor pairs of pairsDevTest.txt, templates computed twice through one cache."""
    rec, embedder = counting_recognizer
    ps = read_pairs(testdata / "lfw" / "pairsDevTest.txt")
    pairs = [p for p in ps.pairs if p.same][:20] + [p for p in ps.pairs if not p.same][:20]
    keys = sorted({k for p in pairs for k in (p.a, p.b)})
    cache_dir = tmp_path_factory.mktemp("template-cache")
    with TemplateCache(cache_dir) as cache:
        first = compute_templates(rec, testdata / "lfw" / "images", keys, cache, progress=False)
        calls_first = embedder.calls
        second = compute_templates(rec, testdata / "lfw" / "images", keys, cache, progress=False)
    return pairs, keys, first, second, calls_first, embedder.calls - calls_first


def test_second_run_hits_the_cache(devtest_sample) -> None:
    _, keys, first, second, calls_first, calls_second = devtest_sample
    assert calls_first == len(keys) - len(first.failures) and first.computed == len(keys)
    assert calls_second == 0 and second.cache_hits == len(keys) and second.computed == 0
    np.testing.assert_array_equal(first.vectors, second.vectors)
    np.testing.assert_array_equal(first.ok, second.ok)


def test_calibrated_threshold_separates_real_pairs(devtest_sample, counting_recognizer) -> None:
    pairs, _, t, _, _, _ = devtest_sample
    rec, _ = counting_recognizer
    scores = pair_scores(pairs, t.index(), t.vectors, t.ok)
    same = np.array([p.same for p in pairs])
    threshold = rec.backend.thresholds.get("fmr1e-3").threshold
    assert metrics.accuracy_at(scores[same], scores[~same], threshold) >= 0.9
    # the same real scores through scikit-learn
    y = same.astype(int)
    assert metrics.roc_auc(scores[same], scores[~same]) == pytest.approx(roc_auc_score(y, scores))
    fpr, tpr, _ = sk_roc_curve(y, scores, drop_intermediate=False)
    roc = metrics.roc_curve(scores[same], scores[~same])
    np.testing.assert_allclose(roc.fmr, fpr)
    np.testing.assert_allclose(roc.tar, tpr)


def test_photo_without_face_is_counted_not_dropped(
    testdata: Path, counting_recognizer, tmp_path: Path
) -> None:
    rec, _ = counting_recognizer
    real = "Abdullah_Gul/Abdullah_Gul_0013.jpg"
    (tmp_path / "Abdullah_Gul").mkdir()
    (tmp_path / real).write_bytes((testdata / "lfw" / "images" / real).read_bytes())
    (tmp_path / "Blank").mkdir()
    Image.new("RGB", (250, 250), (128, 128, 128)).save(tmp_path / "Blank" / "Blank_0001.jpg")
    keys = [real, "Blank/Blank_0001.jpg"]
    with TemplateCache(tmp_path / "cache") as cache:
        t = compute_templates(rec, tmp_path, keys, cache, progress=False)
        again = compute_templates(rec, tmp_path, keys, cache, progress=False)
    for run in (t, again):
        assert run.failures == {"Blank/Blank_0001.jpg": "no_face"}
        assert run.ok.tolist() == [True, False] and not run.vectors[1].any()
    assert again.cache_hits == 2
    scores = pair_scores([Pair(real, "Blank/Blank_0001.jpg", False, 0), Pair(real, real, True, 0)],
                         t.index(), t.vectors, t.ok)
    assert scores[0] == FAILED_SCORE and scores[1] == pytest.approx(1.0, abs=1e-5)


def test_stale_cache_is_refused(testdata: Path, counting_recognizer, tmp_path: Path) -> None:
    rec, _ = counting_recognizer
    images = testdata / "lfw" / "images"
    keys = ["Abdullah_Gul/Abdullah_Gul_0013.jpg", "Abdullah_Gul/Abdullah_Gul_0014.jpg"]
    with TemplateCache(tmp_path) as cache:
        t = compute_templates(rec, images, keys, cache, progress=False)
        assert check_cache(rec, images, t) == 2
        other = np.roll(t.vectors[1], 1)  # as if another version of the pipeline had filled the cache
        cache.store(rec.model_id, variant_of(rec, "center"), {t.sha256[1]: other})
        stale = compute_templates(rec, images, keys, cache, progress=False)
    assert stale.cache_hits == 2
    with pytest.raises(ConfigError, match="no longer matches"):
        check_cache(rec, images, stale)


def test_the_cache_is_encrypted_and_owner_only(testdata: Path, counting_recognizer, tmp_path: Path) -> None:
    import sqlite3
    import stat

    rec, _ = counting_recognizer
    images = testdata / "lfw" / "images"
    keys = ["Abdullah_Gul/Abdullah_Gul_0013.jpg"]
    folder = tmp_path / "new-cache"
    with TemplateCache(folder) as cache:
        t = compute_templates(rec, images, keys, cache, progress=False)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("templates.sqlite", "templates.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    (blob,) = sqlite3.connect(folder / "templates.sqlite").execute("SELECT vector FROM templates").fetchone()
    raw = t.vectors[0].astype("<f4").tobytes()
    assert raw not in blob and raw[:16] not in blob and len(blob) == len(raw) + 28  # nonce + ciphertext + tag
    # Without its key the cache is unreadable: entries are recomputed, never read as garbage.
    (folder / "templates.key").unlink()
    with TemplateCache(folder) as cache:
        assert cache.load(rec.model_id, variant_of(rec, "center")) == {}
