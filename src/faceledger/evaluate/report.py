"""Evaluation reports: a JSON file with every number and a self-contained HTML page.

The HTML embeds its plots as base64 PNG (no external files, no scripts): DET curves
per group (FNMR against FMR, log axes) and a bar chart of per-group FMR and FNMR with
their intervals at the global operating threshold. Plots need matplotlib (imported
only here); without it the page says so and keeps every table.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["jsonable", "render_html", "write_json", "write_report"]


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return jsonable(value.item())
    return value


def write_json(result: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(result), indent=2, allow_nan=False) + "\n")
    return path


def write_report(result: dict, out_dir: str | os.PathLike, stem: str = "evaluation") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.html`` into ``out_dir``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = write_json(result, out / f"{stem}.json")
    html_path = out / f"{stem}.html"
    html_path.write_text(render_html(jsonable(result)))
    return json_path, html_path


# -- plots ----------------------------------------------------------------------------------
def _pyplot():  # noqa: ANN202 - matplotlib.pyplot, optional
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _png(fig) -> str:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    fig.clf()
    return base64.b64encode(buf.getvalue()).decode()


def det_plot(result: dict, attribute: dict | None) -> str | None:
    """DET curves (overall and each group of ``attribute``) as a base64 PNG, or None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4.5))
    curves = {"overall": result["verification"]["det"]}
    curves.update((attribute or {}).get("det", {}))
    for name, c in curves.items():
        pts = [(f, n) for f, n in zip(c["fmr"], c["fnmr"], strict=True) if f and f > 0 and n and n > 0]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=name, lw=2 if name == "overall" else 1.4)
    t = result["operating_threshold"]["threshold"]
    ax.set(xscale="log", yscale="log", xlabel="FMR (false match rate)", ylabel="FNMR (false non-match rate)",
           title=f"DET{' by ' + attribute['attribute'] if attribute else ''} (operating threshold {t:.3f})")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a tiny set may have no point with both rates above zero
        ax.legend()
    png = _png(fig)
    plt.close(fig)
    return png


def bar_plot(attribute: dict) -> str | None:
    """Per-group FMR and FNMR with interval whiskers at the global threshold, as a base64 PNG."""
    plt = _pyplot()
    if plt is None:
        return None
    rows = [attribute["overall"], *attribute["groups"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key in zip(axes, ("fmr", "fnmr"), strict=True):
        names = [r["group"] for r in rows]
        est = [r[key]["estimate"] or 0.0 for r in rows]
        low = [r[key]["low"] if r[key]["low"] is not None else e for e, r in zip(est, rows, strict=True)]
        high = [r[key]["high"] if r[key]["high"] is not None else e for e, r in zip(est, rows, strict=True)]
        lo = [max(0.0, e - x) for e, x in zip(est, low, strict=True)]
        hi = [max(0.0, x - e) for e, x in zip(est, high, strict=True)]
        ax.bar(names, est, yerr=[lo, hi], capsize=5, color=["#777"] + ["#3a7"] * (len(rows) - 1))
        ax.set(title=f"{key.upper()} at threshold {attribute['threshold']:.3f}", ylabel=key.upper())
        ax.grid(True, axis="y", alpha=0.3)
    png = _png(fig)
    plt.close(fig)
    return png


# -- HTML -----------------------------------------------------------------------------------
def _pct(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _ci(iv: dict) -> str:
    if iv.get("estimate") is None:
        return "n/a"
    return f"{_pct(iv['estimate'])} [{_pct(iv['low'])}, {_pct(iv['high'])}]"


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: str | None, alt: str) -> str:
    if png is None:
        return "<p class=note>Plots need matplotlib (<code>pip install matplotlib</code>); tables below.</p>"
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _group_section(result: dict, a: dict) -> str:
    def ratio(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    shown = [a["overall"], *a["groups"]] + ([a["cross_group_impostors"]] if a["cross_group_impostors"] else [])
    rows = [[r["group"], r["n_subjects"], r["n_genuine"], r["false_non_matches"], _ci(r["fnmr"]),
             ratio(r["fnmr_ratio"]), r["n_impostor"], r["false_matches"], _ci(r["fmr"]), ratio(r["fmr_ratio"])]
            for r in shown]
    head = ["group", "subjects", "genuine", "false non-matches", "FNMR [CI]", "FNMR / overall",
            "impostor", "false matches", "FMR [CI]", "FMR / overall"]
    return (f"<h2>By {html.escape(a['attribute'])}</h2><p>Labels from the operator's file "
            f"({html.escape(a.get('labels_source', ''))}); all groups at one threshold {a['threshold']:.4f}. "
            f"Max/min across groups: FMR {ratio(a['fmr_max_min_ratio'])}, FNMR {ratio(a['fnmr_max_min_ratio'])}. "
            f"Unlabelled comparisons: {a['unlabelled_genuine']} genuine, {a['unlabelled_impostor']} impostor.</p>"
            + _table(head, rows) + _img(bar_plot(a), "per-group rates") + _img(det_plot(result, a), "DET by group"))


def render_html(result: dict) -> str:
    """The self-contained HTML page of one evaluation result (as :func:`jsonable` returns it)."""
    v, ds, m = result["verification"], result["dataset"], result["model"]
    op = result["operating_threshold"]
    pts = [[k, p["target_fmr"], "yes" if p["supported"] else "no (too few impostors)",
            f"{p['threshold']:.4f}" if p["supported"] else "", _ci(p["fnmr_interval"]) if p["supported"] else ""]
           for k, p in v["fnmr_at_fmr"].items()]
    ident = result["identification"]
    proto = result.get("protocol") or {}
    parts = [
        f"<h1>Evaluation: {html.escape(m['model_id'])} on {html.escape(ds['name'])}</h1>",
        f"<p>{ds['photos']} photos of {ds['identities']} identities; dataset SHA-256 <code>{ds['sha256']}</code>. "
        f"Failures to acquire a face: {result['templates']['failures_to_acquire']} (kept, scored as non-matches). "
        f"{v['genuine']} genuine and {v['impostor']} impostor comparisons"
        f"{' (a uniform sample of ' + str(v['impostor_total']) + ')' if v['impostor_sampled'] else ''}. "
        f"Date {result['date']}, FaceLedger {result['faceledger']}.</p>",
        f"<p>Operating threshold {op['threshold']:.4f} ({html.escape(op['name'])}; {html.escape(op['source'])}). "
        f"EER {_pct(v['eer'])}; ROC AUC {v['roc_auc']:.5f}."
        + (f" Protocol accuracy {_pct(proto['accuracy_mean'], 2)} &plusmn; {_pct(proto['accuracy_std'], 2)} "
           f"({proto['folds']}-fold)." if "accuracy_mean" in proto else "") + "</p>",
        "<h2>1:1 verification</h2>",
        _table(["point", "target FMR", "supported", "threshold", "FNMR [95% CI, subjects resampled]"], pts),
        _img(det_plot(result, None), "DET"),
        *[_group_section(result, a) for a in result["groups"]],
        "<h2>1:N identification</h2>",
        f"<p>Gallery {ident['gallery_size']}, mated probes {ident['mated_probes']}, non-mated probes "
        f"{ident['nonmated_probes']}.</p>",
        _table(["measure", "value"], [[k, _pct(x)] for k, x in ident["rank_hit_rates"].items()]
               + [[f"FNIR at {k}", _pct(p.get("fnir")) if p["supported"] else "not supported"]
                  for k, p in ident["fnir_at_fpir"].items()]),
    ]
    style = ("body{font:14px system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}img{max-width:100%}.note{color:#a50}")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>FaceLedger evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
