"""Per-group rates at one global threshold, on a small real LFW subset with the gender annotation files.

The numbers are checked against an independent computation (scikit-learn's ROC for the
same scores), and relabelling one group is shown to change only that group's rates.
Labels come only from LFW's annotation files, never from the faces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_curve as sk_roc_curve

from faceledger.evaluate.dataset import labels_from_name_lists, load_dataset, read_labels
from faceledger.evaluate.groups import Comparisons, group_rates, rates_for
from faceledger.evaluate.run import build_comparisons
from faceledger.evaluate.templates import TemplateCache, compute_templates
from faceledger.recognizer import Recognizer

N_PER_SIDE = 50  # the first 50 same + 50 different pairs of View 2's first fold


def small_lfw(testdata: Path, folder: Path, per_side: int = N_PER_SIDE) -> Path:
    """A View 1-style pairs file of the first pairs of ``pairs.txt``, beside a link to the real images."""
    lines = (testdata / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pairs.txt").write_text("\n".join([str(per_side), *lines[:per_side], *lines[300:300 + per_side]]) + "\n")
    if not (folder / "images").exists():
        (folder / "images").symlink_to(testdata / "lfw" / "images", target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def real(testdata: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    ds = load_dataset(small_lfw(testdata, tmp_path_factory.getbasetemp() / "small_lfw"))
    lfw = testdata / "lfw"
    labels = labels_from_name_lists(ds, "gender", {"female": lfw / "female_names.txt", "male": lfw / "male_names.txt"})
    rec = Recognizer()
    with TemplateCache(tmp_path_factory.getbasetemp() / "template_cache") as cache:
        t = compute_templates(rec, ds.root, ds.keys, cache, progress=False)
    subject = np.unique(np.asarray(ds.identities), return_inverse=True)[1]
    comp, _ = build_comparisons(t, subject, max_impostors=10**9, seed=0)
    threshold = rec.backend.thresholds.get().threshold
    return ds, labels, comp, threshold


def _sk_rates(scores: np.ndarray, genuine: np.ndarray, t: float) -> tuple[float, float]:
    """(FMR, FNMR) at ``t`` read from scikit-learn's ROC (match: score >= threshold)."""
    fpr, tpr, th = sk_roc_curve(genuine.astype(int), scores, drop_intermediate=False)
    j = np.flatnonzero(th >= t)[-1]  # the lowest ROC threshold still >= t accepts exactly the scores >= t
    return float(fpr[j]), float(1.0 - tpr[j])


def test_groups_match_scikit_learn_on_real_lfw(real) -> None:  # noqa: ANN001
    ds, labels, comp, t = real
    r = group_rates(comp, labels.of("gender"), t, "gender", replicates=50)
    assert {g.group for g in r.groups} == {"female", "male"}
    assert r.overall.n_genuine + r.overall.n_impostor == comp.scores.size
    fmr, fnmr = _sk_rates(comp.scores, comp.genuine, t)
    assert (r.overall.fmr.estimate, r.overall.fnmr.estimate) == pytest.approx((fmr, fnmr))
    lab = np.array([x or "" for x in labels.of("gender")], dtype=object)
    for g in r.groups:
        both = (lab[comp.a] == g.group) & (lab[comp.b] == g.group)
        assert g.n_genuine == int((both & comp.genuine).sum()) and g.n_impostor == int((both & ~comp.genuine).sum())
        fmr, fnmr = _sk_rates(comp.scores[both], comp.genuine[both], t)
        assert (g.fmr.estimate, g.fnmr.estimate) == pytest.approx((fmr, fnmr))
        assert g.fmr_ratio == pytest.approx(g.fmr.estimate / r.overall.fmr.estimate)
        assert g.fmr.low <= g.fmr.estimate <= g.fmr.high
    assert r.threshold == t  # one global threshold for every group
    assert r.cross is not None and r.cross.n_genuine == 0


def test_relabelling_one_group_changes_only_that_group(real) -> None:  # noqa: ANN001
    ds, labels, comp, t = real
    before = group_rates(comp, labels.of("gender"), t, "gender", replicates=50)
    female = [k for k, v in zip(labels.keys, labels.of("gender"), strict=True) if v == "female"]
    moved = labels.with_labels("gender", {k: "other" for k in female[: len(female) // 2]})
    after = group_rates(comp, moved.of("gender"), t, "gender", replicates=50)
    by = {g.group: g for g in after.groups}
    assert set(by) == {"female", "male", "other"}
    assert by["male"] == next(g for g in before.groups if g.group == "male")
    assert by["female"] != next(g for g in before.groups if g.group == "female")
    assert after.overall == before.overall


def test_csv_labels_per_identity_and_per_image(real, tmp_path: Path) -> None:  # noqa: ANN001
    ds = real[0]
    people = sorted(set(ds.identities))
    (tmp_path / "by_identity.csv").write_text("identity,site\n" + "".join(f"{p},{'A' if i % 2 else 'B'}\n"
                                                                          for i, p in enumerate(people)))
    lab = read_labels(tmp_path / "by_identity.csv", ds)
    assert set(lab.of("site")) == {"A", "B"}
    first = ds.keys[0].rsplit("/", 1)[-1]
    (tmp_path / "by_image.csv").write_text(f"image,band,site\n{first},x,A\n{first},y,A\n{ds.keys[1]},z,\n")
    lab = read_labels(tmp_path / "by_image.csv", ds)
    assert lab.of("band")[0] is None and lab.conflicts == (ds.keys[0],)  # two labels for one photo: unlabelled
    assert lab.of("band")[1] == "z" and lab.of("site")[1] is None and lab.of("site")[0] == "A"


def test_rates_by_hand_on_a_tiny_case() -> None:
    """Five photos, two people + one; a fixed threshold of 0.5."""
    subject = np.array([0, 0, 1, 1, 2])
    a, b = np.array([0, 2, 0, 0, 1, 3]), np.array([1, 3, 2, 4, 3, 4])
    scores = np.array([0.9, 0.4, 0.6, 0.1, 0.2, 0.55])
    comp = Comparisons(scores, subject[a] == subject[b], a, b, subject)
    r = rates_for(comp, 0.5, "all", replicates=20)
    assert (r.n_genuine, r.false_non_matches, r.fnmr.estimate) == (2, 1, 0.5)
    assert (r.n_impostor, r.false_matches, r.fmr.estimate) == (4, 2, 0.5)
    labels = ["f", "f", "m", "m", "f"]
    g = group_rates(comp, labels, 0.5, "x", replicates=20)
    f = next(x for x in g.groups if x.group == "f")
    assert (f.n_genuine, f.n_impostor, f.false_matches) == (1, 1, 0)  # pair (0, 4) is the one f-f impostor
    assert g.cross.n_impostor == 3 and g.fnmr_max_min_ratio is None  # f's FNMR is 0: no finite max/min
