"""The whole evaluation through the CLI on a small real LFW subset, checked by an independent computation.

Uses a Typer app of its own (the global options + this module's commands), so it does not
depend on how ``faceledger.cli.main`` wires things.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from sklearn.metrics import roc_curve as sk_roc_curve
from typer.testing import CliRunner

from faceledger.cli import evaluate_commands
from faceledger.cli.context import global_options
from faceledger.evaluate.dataset import labels_from_name_lists, load_dataset
from faceledger.evaluate.templates import TemplateCache, compute_templates
from faceledger.models.thresholds import load_thresholds_file
from faceledger.recognizer import Recognizer

app = typer.Typer(callback=global_options, no_args_is_help=True, pretty_exceptions_enable=False)
evaluate_commands.register(app)
runner = CliRunner()


def _strict(text: str) -> dict:
    def no_nan(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_nan)


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACELEDGER_DATA_DIR", str(tmp_path / "data"))
    for name in ("FACELEDGER_STORE", "FACELEDGER_POLICY", "FACELEDGER_ACTOR", "FACELEDGER_ROLE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def small(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(dataset folder, labels CSV, template cache) for the first 50 + 50 pairs of View 2."""
    base = tmp_path_factory.getbasetemp()
    folder = base / "small_lfw_cli"
    folder.mkdir(exist_ok=True)
    lines = (testdata / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    (folder / "pairs.txt").write_text("\n".join(["50", *lines[:50], *lines[300:350]]) + "\n")
    if not (folder / "images").exists():
        (folder / "images").symlink_to(testdata / "lfw" / "images", target_is_directory=True)
    ds = load_dataset(folder)
    lfw = testdata / "lfw"
    lab = labels_from_name_lists(ds, "gender", {"female": lfw / "female_names.txt", "male": lfw / "male_names.txt"})
    csv = base / "gender.csv"
    csv.write_text("image,gender\n" + "".join(f"{k},{v}\n" for k, v in zip(ds.keys, lab.of("gender"), strict=True)
                                              if v))
    return folder, csv, base / "template_cache"


def _independent_scores(folder: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, list[str], object]:
    """All-pairs scores and same-person flags computed here, without faceledger.evaluate.run."""
    ds = load_dataset(folder)
    with TemplateCache(cache) as c:
        t = compute_templates(Recognizer(), ds.root, ds.keys, c, progress=False)
    i, j = np.triu_indices(len(ds.keys), 1)
    ids = np.array(ds.identities)
    v = t.vectors.astype(np.float64)
    return (v[i] * v[j]).sum(1), ids[i] == ids[j], list(ds.keys), t


def test_evaluate_command_end_to_end(small, tmp_path: Path) -> None:  # noqa: ANN001
    folder, csv, cache = small
    out, th = tmp_path / "report", tmp_path / "site-thresholds.json"
    res = runner.invoke(app, ["evaluate", str(folder), "--labels", str(csv), "--out", str(out),
                              "--cache-dir", str(cache),
                              "--write-thresholds", str(th), "--replicates", "30", "--quiet"])
    assert res.exit_code == 0, res.output
    r = _strict((out / "evaluation.json").read_text())
    scores, same, keys, t = _independent_scores(folder, cache)
    v = r["verification"]
    assert (v["genuine"], v["impostor"], v["impostor_sampled"]) == (int(same.sum()), int((~same).sum()), False)
    fpr, tpr, thr = sk_roc_curve(same.astype(int), scores, drop_intermediate=False)
    op = r["operating_threshold"]["threshold"]
    k = np.flatnonzero(thr >= op)[-1]
    overall = r["groups"][0]["overall"]
    assert overall["fmr"]["estimate"] == pytest.approx(fpr[k], abs=1e-9)
    assert overall["fnmr"]["estimate"] == pytest.approx(1 - tpr[k], abs=1e-9)
    assert {g["group"] for g in r["groups"][0]["groups"]} == {"female", "male"}
    assert r["dataset"]["sha256"] == load_dataset(folder).digest(t.sha256)
    points = load_thresholds_file(th)
    assert points.model_id == r["model"]["model_id"] and points.calibration["dataset_sha256"] == r["dataset"]["sha256"]
    imp = np.sort(scores[~same])
    assert np.mean(imp >= points.get().threshold) <= 1e-3  # the written threshold meets the target FMR
    page = (out / "evaluation.html").read_text()
    try:
        import matplotlib  # noqa: F401

        assert page.count("data:image/png;base64,") >= 3
    except ImportError:
        assert "Plots need matplotlib" in page
    assert "female" in page and "<script" not in page


def test_folder_per_identity_dataset(testdata: Path, tmp_path: Path) -> None:
    images = testdata / "lfw" / "images"
    people = ["Abdullah_Gul", "Adrien_Brody", "Al_Gore", "Alejandro_Toledo"]
    ds_dir = tmp_path / "people"
    ds_dir.mkdir()
    for p in people:
        (ds_dir / p).symlink_to(images / p, target_is_directory=True)
    (tmp_path / "sites.csv").write_text("identity,site\n" + "".join(f"{p},{'A' if n < 2 else 'B'}\n"
                                                                   for n, p in enumerate(people)))
    out = tmp_path / "out"
    res = runner.invoke(app, ["--backend", "yunet-sface", "evaluate", str(ds_dir),
                              "--labels", str(tmp_path / "sites.csv"), "--out", str(out),
                              "--cache-dir", str(tmp_path / "c"), "--replicates", "10", "--quiet"])
    assert res.exit_code == 0, res.output
    r = _strict((out / "evaluation.json").read_text())
    n = sum(len(list((images / p).iterdir())) for p in people)
    assert r["dataset"]["photos"] == n and r["dataset"]["identities"] == 4 and r["dataset"]["pairs_file"] is None
    assert [g["group"] for g in r["groups"][0]["groups"]] == ["A", "B"]


def test_test_pairs_returns_raw_scores_and_stores_nothing(testdata: Path, tmp_path: Path) -> None:
    images = testdata / "lfw" / "images"
    a, b, c = (images / "Al_Gore/Al_Gore_0001.jpg", images / "Al_Gore/Al_Gore_0002.jpg",
               images / "Adrien_Brody/Adrien_Brody_0002.jpg")
    (tmp_path / "pairs.csv").write_text(f"a,b\n{a},{b}\n{a},{c}\n")
    store = tmp_path / "store" / "fl.db"
    store.parent.mkdir()
    before = sorted(p for p in tmp_path.rglob("*") if "store" not in p.parts)
    res = runner.invoke(app, ["--store", f"sqlite:///{store}", "test-pairs",
                              str(tmp_path / "pairs.csv"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rec = Recognizer()
    ta, tb, tc = (rec.template(p, face="center") for p in (a, b, c))
    assert out["model_id"] == rec.model_id and out["threshold"] == rec.backend.thresholds.get().threshold
    assert [x["score"] for x in out["results"]] == [rec.compare(ta, tb), rec.compare(ta, tc)]
    assert [x["match"] for x in out["results"]] == [x["score"] >= out["threshold"] for x in out["results"]]
    assert sorted(p for p in tmp_path.rglob("*") if "store" not in p.parts) == before
    # The only trace of the test is one ledger entry: who ran it, how many comparisons; no photo digests.
    from faceledger.config import current_os_user
    from faceledger.governance.ledger import LedgerEntry
    from faceledger.store import open_store

    with_store = open_store(f"sqlite:///{store}")
    opening, entry = [LedgerEntry.from_row(r) for r in with_store.iter_ledger()]
    assert opening.operation == "policy_change"  # a fresh ledger opens with the policy in force
    with_store.close()
    me = current_os_user().name  # the CLI acts as the OS user running it (owner of the store's directory)
    assert (entry.operation, entry.actor, entry.role, entry.credential) == ("independent_test", me, "auditor",
                                                                            f"os:{me}")
    assert entry.result["comparisons"] == 2 and entry.inputs == {}


def test_report_accountability_command(tmp_path: Path) -> None:
    ev = tmp_path / "evaluation.json"
    ev.write_text(json.dumps({
        "date": "2026-11-26T00:00:00Z", "model": {"model_id": "m"}, "templates": {"failures_to_acquire": 0},
        "dataset": {"name": "d", "photos": 2, "identities": 2, "sha256": "0" * 64},
        "operating_threshold": {"threshold": 0.4, "name": "fmr1e-3"}, "verification": {"eer": 0.01}, "groups": []}))
    store = f"sqlite:///{tmp_path / 'fl.db'}"
    for out in (tmp_path / "acc.md", tmp_path / "acc.html"):
        res = runner.invoke(app, ["--store", store, "--role", "auditor", "report", "accountability",
                                  "--out", str(out), "--evaluation", str(ev)])
        assert res.exit_code == 0, res.output
    md = (tmp_path / "acc.md").read_text()
    assert "## Latest evaluation" in md and "0" * 64 in md and "## Usage and review statistics" in md
    assert "ledger entries" in md and (tmp_path / "acc.html").read_text().startswith("<!doctype html>")
    res = runner.invoke(app, ["--store", store, "--role", "enroller", "report", "accountability",
                              "--out", str(tmp_path / "x.md")])
    assert res.exit_code == 6  # refused: an enroller may not read reports


def test_independent_test_reports_progress_per_pair(testdata: Path, tmp_path: Path) -> None:
    from faceledger.engine import Actor, Engine
    from faceledger.governance.policy import Policy
    from faceledger.store import open_store

    images = testdata / "lfw" / "images"
    a, b = images / "Al_Gore/Al_Gore_0001.jpg", images / "Al_Gore/Al_Gore_0002.jpg"
    missing = tmp_path / "gone.jpg"  # a pair that fails still counts as done
    engine = Engine(open_store(f"sqlite:///{tmp_path / 'fl.db'}"), policy=Policy.default())
    seen: list[int] = []
    try:
        result = engine.independent_test(Actor("auditor-1", "auditor"), [(a, b), (a, missing), (b, a)],
                                         on_pair=seen.append)
    finally:
        engine.close()
    assert seen == [1, 2, 3]
    assert [r.error is None for r in result.results] == [True, False, True]
