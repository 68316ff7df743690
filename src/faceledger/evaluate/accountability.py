"""The accountability report Washington's SB 6280 asks for, filled from the system itself.

:func:`build_accountability_report` assembles it from pieces the caller gathers (the
engine or the CLI): the models in use (:class:`~faceledger.types.ModelInfo`), the
deployment policy (:meth:`Policy.to_dict`), the latest evaluation (the JSON of
:func:`faceledger.evaluate.run.evaluate`), usage and review statistics from the ledger
(:meth:`UsageReport.to_dict`) and the complaint channel. This module only renders:
no I/O, no store, no models. Sections say plainly when a piece is missing
(e.g. "no evaluation has been run") instead of leaving them out.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faceledger.types import ModelInfo

__all__ = ["REFUSALS", "AccountabilityReport", "build_accountability_report"]

#: What FaceLedger refuses to do, whatever the configuration (see docs/accountability.md).
REFUSALS = (
    "Infer age, gender, race, emotion or any other attribute from a face: there is no such operation; "
    "subgroup labels in evaluations come only from the operator's files.",
    "Enroll a face without a consent record covering the purpose, or on a legal basis the policy does not accept.",
    "Keep templates after consent is withdrawn or expires, or after the retention period.",
    "Run 1:N identification when the policy disables it (the default), for an undeclared or disallowed purpose, "
    "without a valid authorization in scope, or above the hourly limit.",
    "Identify people at lawful assemblies, protests or religious activities, or any target the policy prohibits.",
    "Identify on live streams unless both the policy and an authorization allow it.",
    "Let a searcher review their own search, or treat a candidate list as a decision.",
    "Write photos or templates into the ledger.",
    "Use per-group thresholds: every group is decided at one global threshold.",
)

DATA_FLOW = {
    "inputs": "Photos (JPEG, PNG, WebP, ...) decoded under size and pixel limits; consent and authorization records; "
              "the deployment policy.",
    "processing": "Face detection, 5-point alignment to 112x112, a face template (unit vector) per face, cosine "
                  "comparison against a calibrated threshold; identification searches only galleries with consent, "
                  "under the policy; every operation is written to a hash-chained ledger.",
    "outputs": "Match decisions with score, threshold and model id; candidate lists for human review (leads, not "
               "decisions); redacted photos; reports. Templates are encrypted at rest and erased with consent.",
}


@dataclass(frozen=True)
class AccountabilityReport:
    """The report's content as plain data; render with :meth:`to_markdown` or :meth:`to_html`."""

    generated_at: str
    organisation: str
    models: tuple[dict[str, Any], ...]
    refusals: tuple[str, ...]
    data_flow: Mapping[str, str]
    policy: Mapping[str, Any]
    evaluation: Mapping[str, Any] | None
    usage: Mapping[str, Any] | None
    complaint_channel: str | None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def to_markdown(self) -> str:
        return "\n".join(_markdown(self)) + "\n"

    def to_html(self) -> str:
        """A self-contained HTML page (same sections as the Markdown)."""
        body = _to_html(_markdown(self))
        style = ("body{font:14px system-ui,sans-serif;max-width:900px;margin:2em auto}"
                 "td,th{border:1px solid #ccc;padding:3px 6px}")
        return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Accountability report</title>"
                f"<style>{style}</style></head><body>{body}</body></html>\n")


def build_accountability_report(
    models: Sequence[ModelInfo],
    policy: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None = None,
    usage: Mapping[str, Any] | None = None,
    complaint_channel: str | None = None,
    generated_at: dt.datetime | None = None,
) -> AccountabilityReport:
    """Assemble the report. ``complaint_channel`` defaults to the policy's ``organisation.complaint_channel``."""
    org = policy.get("organisation", {}) if isinstance(policy.get("organisation"), Mapping) else {}
    channel = complaint_channel or org.get("complaint_channel")
    notes = []
    if channel is None:
        notes.append("No complaint channel is configured: set organisation.complaint_channel in the policy.")
    if evaluation is None:
        notes.append("No evaluation has been run: run `faceledger evaluate` on data like the deployment's.")
    when = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return AccountabilityReport(
        generated_at=when,
        organisation=str(org.get("name", "FaceLedger deployment")),
        models=tuple(_model(m) for m in models),
        refusals=REFUSALS,
        data_flow=dict(DATA_FLOW),
        policy=dict(policy),
        evaluation=dict(evaluation) if evaluation is not None else None,
        usage=dict(usage) if usage is not None else None,
        complaint_channel=channel,
        notes=tuple(notes),
    )


def _model(m: ModelInfo) -> dict[str, Any]:
    return {"backend": m.backend, "model_id": m.model_id, "detector": m.detector, "embedder": m.embedder,
            "runtime": m.runtime, "licence": m.licence, "files": [list(f) for f in m.files],
            "operating_points": [{"name": p.name, "threshold": p.threshold, "target_fmr": p.target_fmr,
                                  "dataset": p.dataset} for p in m.operating_points],
            "default_operating_point": m.default_operating_point}


# -- rendering ------------------------------------------------------------------------------
def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.3f}%"


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(_cell(c) for c in r) + " |" for r in rows), ""]


def _markdown(r: AccountabilityReport) -> list[str]:
    out = [f"# Accountability report: {r.organisation}", "", f"Generated {r.generated_at} by FaceLedger.", ""]
    out += [f"> {n}" for n in r.notes] + ([""] if r.notes else [])
    out += ["## Models in use", ""]
    out += _table(["backend", "model id", "detector", "embedder", "runtime", "licence", "default point"],
                  [[m["backend"], m["model_id"], m["detector"], m["embedder"], m["runtime"], m["licence"],
                    m["default_operating_point"] or "not calibrated"] for m in r.models])
    out += ["## Capabilities and limits: what FaceLedger refuses to do", ""] + [f"- {x}" for x in r.refusals] + [""]
    out += ["## Data inputs, processing and outputs", ""]
    out += [f"- **{k.capitalize()}.** {v}" for k, v in r.data_flow.items()] + [""]
    out += _policy_md(r.policy) + _evaluation_md(r.evaluation) + _usage_md(r.usage)
    out += ["## Complaints", "", r.complaint_channel or "No complaint channel is configured.", ""]
    return out


def _policy_md(p: Mapping[str, Any]) -> list[str]:
    ident, lim = p.get("identification", {}), p.get("limits", {})
    ret, roles = p.get("retention", {}), p.get("roles", {})
    rows = [["purposes allowed", ", ".join(p.get("purposes", {}).get("allowed", []))],
            ["1:N identification enabled", ident.get("enabled")], ["live identification", ident.get("live_allowed")],
            ["max candidates", lim.get("max_candidates")], ["min threshold", lim.get("min_threshold")],
            ["searches per actor per hour", lim.get("max_searches_per_actor_per_hour")],
            ["reviewers required", p.get("review", {}).get("required_reviewers")],
            ["retention (days)", ret.get("default_days")],
            ["prohibited targets", ", ".join(p.get("prohibited", {}).get("targets", []))],
            ["legal bases", ", ".join(p.get("consent", {}).get("legal_bases", []))]]
    out = ["## Deployment policy", ""] + _table(["setting", "value"], rows)
    out += _table(["role", "operations"], [[k, ", ".join(v)] for k, v in roles.items()]) if roles else []
    return out


def _evaluation_md(e: Mapping[str, Any] | None) -> list[str]:
    out = ["## Latest evaluation", ""]
    if e is None:
        return out + ["No evaluation has been run.", ""]
    v, ds, op = e["verification"], e["dataset"], e["operating_threshold"]
    out += [f"Model `{e['model']['model_id']}` on `{ds['name']}` ({ds['photos']} photos, {ds['identities']} "
            f"identities; dataset SHA-256 `{ds['sha256']}`), {e['date']}. Operating threshold "
            f"{op['threshold']:.4f} ({op['name']}). EER {_pct(v['eer'])}; failures to acquire a face: "
            f"{e['templates']['failures_to_acquire']}.", ""]
    for a in e.get("groups", []):
        rows = [[g["group"], g["n_genuine"], _pct(g["fnmr"]["estimate"]),
                 f"{_pct(g['fnmr']['low'])} – {_pct(g['fnmr']['high'])}", g["n_impostor"],
                 _pct(g["fmr"]["estimate"]), f"{_pct(g['fmr']['low'])} – {_pct(g['fmr']['high'])}"]
                for g in [a["overall"], *a["groups"]]]
        out += [f"Per {a['attribute']} (labels from the operator: {a.get('labels_source', 'n/a')}), one threshold "
                f"for all; max/min FMR {_ratio(a['fmr_max_min_ratio'])}, FNMR {_ratio(a['fnmr_max_min_ratio'])}:", ""]
        out += _table(["group", "genuine", "FNMR", "95% CI", "impostor", "FMR", "95% CI"], rows)
    return out


def _ratio(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.2f}"


def _usage_md(u: Mapping[str, Any] | None) -> list[str]:
    out = ["## Usage and review statistics", ""]
    if u is None:
        return out + ["No usage statistics available (no ledger in this report).", ""]
    out += [f"Period {u.get('start')} to {u.get('end')}: {u.get('entries', 0)} ledger entries.", ""]
    for key in ("by_operation", "by_outcome", "refusals", "identifications", "review_decisions", "leads_closed"):
        counts = u.get(key) or {}
        out += [f"**{key.replace('_', ' ').capitalize()}**: "
                + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"), ""]
    return out


def _to_html(lines: Sequence[str]) -> str:
    """The few Markdown forms :func:`_markdown` emits (headings, lists, tables, quotes), as HTML."""
    out, rows = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            if not line.startswith("|--"):
                cells = [html.escape(c.strip().replace("\\|", "|")) for c in line.strip("|").split(" | ")]
                tag = "th" if not rows else "td"
                rows.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if rows:
            out.append("<table>" + "".join(rows) + "</table>")
            rows = []
        text = html.escape(line)
        for prefix, tag in (("# ", "h1"), ("## ", "h2"), ("- ", "li"), ("> ", "blockquote")):
            if line.startswith(prefix):
                out.append(f"<{tag}>{text[len(html.escape(prefix)):]}</{tag}>")
                break
        else:
            out.append(f"<p>{text}</p>" if line else "")
    return "".join(out)
