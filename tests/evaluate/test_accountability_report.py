"""The SB 6280 accountability report assembled from real pieces: policy, model info, usage, evaluation."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import numpy as np

from faceledger.evaluate.accountability import REFUSALS, build_accountability_report
from faceledger.evaluate.groups import Comparisons, group_rates
from faceledger.governance.policy import Policy, parse_policy
from faceledger.governance.reports import usage_report
from faceledger.types import ModelInfo

MODEL = ModelInfo(backend="yunet-sface", model_id="sface-test", detector="yunet", embedder="sface", dimension=128,
                  runtime="OpenCV", licence="MIT / Apache-2.0", default_operating_point="fmr1e-3")


def _evaluation() -> dict:
    subject = np.array([0, 0, 1, 1, 2, 2])
    a, b = np.array([0, 2, 4, 0, 1, 3]), np.array([1, 3, 5, 2, 4, 5])
    comp = Comparisons(np.array([0.9, 0.2, 0.8, 0.5, 0.1, 0.3]), subject[a] == subject[b], a, b, subject)
    groups = group_rates(comp, ["f", "f", "m", "m", "f", "f"], 0.4, "gender", replicates=20).to_dict()
    groups["labels_source"] = "operator.csv"
    return {
        "date": "2026-11-26T00:00:00Z",
        "model": {"model_id": "sface-test"},
        "dataset": {"name": "site photos", "photos": 6, "identities": 3, "sha256": "ab" * 32},
        "operating_threshold": {"threshold": 0.4, "name": "fmr1e-3"},
        "verification": {"eer": 0.25},
        "templates": {"failures_to_acquire": 0},
        "groups": [groups],
    }


def test_report_has_every_sb6280_section_filled_from_the_pieces() -> None:
    policy = parse_policy('[organisation]\nname = "City Library"\ncomplaint_channel = "privacy@example.org"\n'
                          '[identification]\nenabled = true\n')
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    usage = usage_report([], now - dt.timedelta(days=30), now, policy.organisation).to_dict()
    ev = _evaluation()
    r = build_accountability_report([MODEL], policy.to_dict(), ev, usage, generated_at=now)
    md = r.to_markdown()
    assert md.startswith("# Accountability report: City Library")
    for heading in ("Models in use", "what FaceLedger refuses to do", "Data inputs, processing and outputs",
                    "Deployment policy", "Latest evaluation", "Usage and review statistics", "Complaints"):
        assert f"## {heading}" in md or heading in md
    assert "sface-test" in md and "MIT / Apache-2.0" in md
    assert "| 1:N identification enabled | True |" in md
    assert "privacy@example.org" in md and not r.notes
    female = next(g for g in ev["groups"][0]["groups"] if g["group"] == "f")
    assert f"{100 * female['fmr']['estimate']:.3f}%" in md and "operator.csv" in md
    assert all(x in md for x in REFUSALS)


def test_missing_pieces_are_said_not_skipped() -> None:
    r = build_accountability_report([MODEL], Policy.default().to_dict())
    md = r.to_markdown()
    assert "No evaluation has been run." in md and "No complaint channel is configured" in md
    assert "No usage statistics available" in md and len(r.notes) == 2


def test_html_is_self_contained_and_well_formed() -> None:
    r = build_accountability_report([MODEL], Policy.default().to_dict(), _evaluation())
    page = r.to_html()

    class Check(HTMLParser):
        tags: list[str] = []
        links = 0

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.tags.append(tag)
            self.links += any(k in ("src", "href") for k, _ in attrs)

    c = Check()
    c.feed(page)
    assert c.tags.count("table") >= 3 and "h1" in c.tags and c.links == 0
    assert "<script" not in page and "&lt;" not in page.split("<body>")[1][:40]
