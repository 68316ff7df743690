"""The evaluation shows a bar for every long stage, each finished, and none for no work ("0/0")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from faceledger.evaluate import run
from faceledger.evaluate.dataset import labels_from_name_lists, load_dataset
from faceledger.evaluate.progress import REPLICATE_TICK, Stages
from faceledger.recognizer import Recognizer

STAGES = ("scoring comparisons", "1:1 rates, bootstrap intervals", "per-group rates", "1:N identification")


@pytest.fixture(scope="module")
def tiny(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_lfw")
    lines = (testdata / "lfw" / "pairs.txt").read_text().splitlines()[1:]
    (folder / "pairs.txt").write_text("\n".join(["15", *lines[:15], *lines[300:315]]) + "\n")
    (folder / "images").symlink_to(testdata / "lfw" / "images", target_is_directory=True)
    return folder


def _finished_bars(err: str) -> dict[str, tuple[int, int]]:
    bars = {}
    for label in (*STAGES, "templates"):
        found = re.findall(rf"{re.escape(label)}.*?(\d+)/(\d+)", err)
        if found:
            bars[label] = tuple(map(int, found[-1]))
    return bars


def test_every_stage_has_a_finished_bar_and_a_cached_run_no_empty_one(tiny: Path, testdata: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ds = load_dataset(tiny)
    lfw = testdata / "lfw"
    labels = labels_from_name_lists(ds, "gender", {"female": lfw / "female_names.txt",
                                                   "male": lfw / "male_names.txt"})
    cfg = run.EvaluationConfig(replicates=20, cache_dir=tmp_path / "cache", use_cache=True, progress=True)
    rec = Recognizer()
    run.evaluate(ds, labels, rec, cfg)
    first = _finished_bars(capsys.readouterr().err)
    assert set(first) == {*STAGES, "templates"}, first
    assert all(done == total and total > 0 for done, total in first.values()), first
    assert first["templates"][1] == len(ds.keys)

    run.evaluate(ds, labels, rec, cfg)          # every template from the cache now
    err = capsys.readouterr().err
    assert "0/0" not in err and f"templates: all {len(ds.keys)} from the cache" in err
    again = _finished_bars(err)
    assert set(again) == set(STAGES) and all(done == total for done, total in again.values()), again


def test_bootstrap_replicates_advance_the_current_stage_only() -> None:
    from faceledger.evaluate.bootstrap import bootstrap

    seen: list[int] = []
    with Stages(enabled=False) as stages, stages.stage("s", 25, "replicates"):
        outer = REPLICATE_TICK.get()
        REPLICATE_TICK.set(lambda n: (seen.append(n), outer(n)))
        bootstrap(lambda m: float(m.sum()), 5, replicates=25)
    assert sum(seen) == 25
    assert REPLICATE_TICK.get() is None
