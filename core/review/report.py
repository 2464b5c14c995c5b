"""The evidence pack of a version: one self-contained HTML file a reviewer signs off on.

Everything is inside the file (plotly's script inlined once, the map drawn as a plain scatter
of coordinates instead of map tiles), so it opens offline and can be attached to a ticket.
All text from the registry is escaped: descriptions, reasons and comments are user input.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core import registry
from core.data import catalogue, datasets
from core.data.categories import CATEGORIES
from core.errors import CoreError
from core.monitoring import drift
from core.registry import artifacts, audit
from core.registry.entities import VersionInfo
from core.review import slices
from core.serving import predict

SAMPLE_LOCATION = (40.4168, -3.7038)  # Puerta del Sol
SAMPLE_USERS = 4


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return _e(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], flag: Sequence[bool] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="flag"' if i < len(flag) and flag[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# The report opens offline, away from whatever plotly default the process that built it set
# (a dashboard's template drew every trace black): each figure names its template and colours.
TEMPLATE = "plotly_white"
PALETTE = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#9e9d24")


class _Figures:
    """Plotly figures as HTML; the library's script is inlined with the first one only."""

    def __init__(self) -> None:
        self.first = True

    def html(self, fig: Any) -> str:
        import plotly.io as pio

        out = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs="inline" if self.first else False,
            config={"displaylogo": False, "responsive": True},
        )
        self.first = False
        return out


def _metrics_section(v: VersionInfo, prod: VersionInfo | None) -> str:
    baseline = v.metadata.get("baseline") or {}
    keys = sorted(set(v.metrics) | set(baseline))
    rows = []
    for k in keys:
        ours = v.metrics.get(k)
        theirs = None if prod is None else prod.metrics.get(k)
        base = baseline.get(k)
        rows.append(
            [
                k,
                ours,
                theirs,
                None if ours is None or theirs is None else ours - theirs,
                base,
                None if ours is None or base is None else ours - base,
            ]
        )
    label = "production" if prod is None else f"production ({prod.version})"
    note = ""
    if prod is not None and v.dataset != prod.dataset:
        note = (
            "<p class='muted'>Each version is measured on the held-out users of its own "
            "training dataset; the baseline column is the popularity model on this version's "
            "split, the fair comparison when the datasets differ.</p>"
        )
    return note + _table(
        [
            "metric",
            "this version",
            label,
            "Δ vs production",
            "popularity baseline",
            "Δ vs baseline",
        ],
        rows,
    )


def _slices_section(v: VersionInfo, figures: _Figures) -> tuple[str, list[tuple[str, str]]]:
    import plotly.graph_objects as go

    rows = slices.compare_versions(v) if v.stage != "production" else []
    own = v.metadata.get("slices") or {}
    if not own:
        return "<p>No per-slice figures were recorded for this version.</p>", []
    if rows:
        table = _table(
            ["slicing", "slice", "test users", "NDCG@5 (this)", "NDCG@5 (production)", "Δ"],
            [[r.slicing, r.bucket, r.users, r.candidate, r.reference, r.delta] for r in rows],
            [r.worse for r in rows],
        )
        worse = slices.flagged(rows)
        note = (
            "<p class='warn'>Worse than production on: "
            + _e(", ".join(f"{a}: {b}" for a, b in worse))
            + "</p>"
            if worse
            else "<p>No slice is worse than production by more than 0.02 NDCG@5.</p>"
        )
    else:
        table = _table(
            ["slicing", "slice", "test users", "NDCG@5", "RMSE"],
            [
                [s, b, m.get("users"), m.get("ndcg@5"), m.get("rmse")]
                for s, buckets in own.items()
                for b, m in buckets.items()
            ],
        )
        worse, note = [], "<p>No production version to compare slices with.</p>"
    fig = go.Figure()
    labels: list[str] = []
    for i, (slicing, buckets) in enumerate(own.items()):
        names = [f"{slicing}: {b}" for b in buckets]
        labels += names
        fig.add_bar(
            name=slicing,
            y=names,
            x=[m.get("ndcg@5", 0) for m in buckets.values()],
            orientation="h",
            marker_color=PALETTE[i % len(PALETTE)],
        )
    # Horizontal bars: long slice names stay whole instead of tilted and cut off.
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], automargin=True)
    fig.update_xaxes(title="NDCG@5", rangemode="tozero")
    fig.update_layout(
        template=TEMPLATE,
        height=max(260, 26 * len(labels) + 110),
        margin={"t": 40, "l": 10, "r": 10, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    return note + table + figures.html(fig), worse


def _drift_section(v: VersionInfo, prod: VersionInfo | None) -> str:
    if v.dataset is None or prod is None or prod.dataset is None:
        return "<p>No training data to compare with production's.</p>"
    if (v.dataset.name, v.dataset.version) == (prod.dataset.name, prod.dataset.version):
        return f"<p>Trained on the same dataset as production ({_e(v.dataset.label)}).</p>"
    ours = datasets.load_users(datasets.get_dataset(v.dataset.name, v.dataset.version))
    theirs = datasets.load_users(datasets.get_dataset(prod.dataset.name, prod.dataset.version))
    result = drift.compute(theirs, ours, numeric=list(CATEGORIES))
    rows = sorted(result.columns.items(), key=lambda kv: -kv[1].score)
    return (
        f"<p>{_e(v.dataset.label)} against production's {_e(prod.dataset.label)}: "
        f"{result.drift_share:.0%} of the categories drifted ({_e(rows[0][1].method)}, "
        f"threshold {rows[0][1].threshold}).</p>"
        + _table(
            ["category", "drifted", "score"],
            [[c, "yes" if d.drifted else "", d.score] for c, d in rows[:10]],
            [d.drifted for _, d in rows[:10]],
        )
    )


def _samples_section(v: VersionInfo, figures: _Figures) -> str:
    import plotly.graph_objects as go

    from core.data.generator import generate_users

    try:
        loaded = predict.load_version(v)
    except CoreError as exc:
        return f"<p class='warn'>The version cannot be loaded: {_e(exc)}</p>"
    users = generate_users(SAMPLE_USERS, seed=7)
    prefs = users[list(CATEGORIES)].to_numpy(dtype=float)
    lat, lng = SAMPLE_LOCATION
    lists = predict.recommend_loaded(
        loaded, prefs, prefs > 0, [lat] * len(prefs), [lng] * len(prefs), 10
    )
    cat = catalogue.load()
    near = np.hypot(cat.lat - lat, (cat.lng - lng) * 0.77) < 0.03
    fig = go.Figure()
    fig.add_scattergl(
        x=cat.lng[near],
        y=cat.lat[near],
        mode="markers",
        name="catalogue",
        marker={"size": 3, "color": "#c8c8c8"},
        hoverinfo="skip",
    )
    for i, items in enumerate(lists):
        fig.add_scatter(
            x=[r.lng for r in items],
            y=[r.lat for r in items],
            mode="markers",
            name=f"user {i + 1}",
            text=[f"{r.name} ({r.category})" for r in items],
            marker={"size": 10, "color": PALETTE[i % len(PALETTE)]},
        )
    fig.add_scatter(
        x=[lng],
        y=[lat],
        mode="markers",
        name="user location",
        marker={"size": 14, "symbol": "x", "color": "black"},
    )
    fig.update_layout(
        template=TEMPLATE,
        height=520,
        margin={"t": 40, "l": 10, "r": 10, "b": 10},
        xaxis={"title": "longitude", "automargin": True},
        yaxis={"title": "latitude", "scaleanchor": "x", "scaleratio": 1.3, "automargin": True},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    tables = []
    for i, items in enumerate(lists):
        liked = ", ".join(c for c, x in zip(CATEGORIES, prefs[i], strict=True) if x >= 4)
        tables.append(
            f"<h4>User {i + 1} (loves {_e(liked or 'nothing in particular')})</h4>"
            + _table(
                ["#", "place", "category", "score", "distance (m)"],
                [
                    [n + 1, r.name, r.category, r.score, round(r.distance_m)]
                    for n, r in enumerate(items)
                ],
            )
        )
    return figures.html(fig) + "".join(tables)


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2328;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}th{background:#f6f8fa}
tr.flag td{background:#ffebe9}.warn{color:#a40e26;font-weight:600}.muted{color:#656d76}
code{background:#f6f8fa;padding:0 .3rem}
"""


def build(model: str, version: str) -> tuple[str, dict[str, Any]]:
    """The report's HTML, and a summary of what it found (for the page and the tests)."""
    v = registry.get_version(model, version)
    prod = registry.find_version(model, "production")
    if prod is not None and prod.version == v.version:
        prod = None if v.stage == "production" else prod
    figures = _Figures()
    integrity = artifacts.check(v.artifact_dir, v.files)
    meta = v.metadata
    lineage: list[list[Any]] = [
        ["dataset", "–" if v.dataset is None else v.dataset.label],
        ["dataset SHA-256", "–" if v.dataset is None else v.dataset.sha256],
        ["parent", "–" if v.parent is None else "@".join(v.parent)],
        ["code revision", meta.get("code_revision")],
        ["python", meta.get("python_version")],
        ["framework", f"{meta.get('framework', '–')} {meta.get('framework_version', '')}"],
        *[[f"library: {k}", val] for k, val in sorted((meta.get("libraries") or {}).items())],
    ]
    slices_html, worse = _slices_section(v, figures)
    verdicts = audit.verdicts(model, version)
    events = [e for e in registry.timeline(model) if e.version == version]
    parts = [
        f"<h1>{_e(v.label)}</h1>",
        f"<p class='muted'>{_e(v.family)} · stage <b>{_e(v.stage)}</b> · created "
        f"{v.created_at:%Y-%m-%d %H:%M} UTC by {_e(v.created_by)} · report generated "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC</p>",
        f"<p>{_e(v.description)}</p>",
        "<h2>Lineage</h2>",
        _table(["", "value"], lineage),
        "<h2>Artifact integrity</h2>",
        _table(
            ["file", "SHA-256", "status"],
            [
                [f, v.files[f][:16] + "…" if f in v.files else "not recorded", s]
                for f, s in integrity.items()
            ],
            [s != "ok" for s in integrity.values()],
        ),
        "<h2>Metrics against production and the baseline</h2>",
        _metrics_section(v, prod),
        "<h2>Per-slice quality</h2>",
        slices_html,
        "<h2>Drift of the training data</h2>",
        _drift_section(v, prod),
        "<h2>Audit verdicts</h2>",
        _table(
            ["when", "auditor", "verdict", "comment"],
            [[f"{a.created_at:%Y-%m-%d %H:%M}", a.auditor, a.verdict, a.comment] for a in verdicts],
        )
        if verdicts
        else "<p>No audit verdict recorded.</p>",
        "<h2>Sample recommendations (Puerta del Sol, generated users)</h2>",
        _samples_section(v, figures),
        "<h2>Stage timeline</h2>",
        _table(
            ["when", "action", "from", "to", "by", "reason"],
            [
                [
                    f"{e.created_at:%Y-%m-%d %H:%M:%S}",
                    e.action,
                    e.from_stage or "",
                    e.to_stage,
                    e.actor,
                    e.reason,
                ]
                for e in events
            ],
        ),
    ]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(v.label)} — model report</title><style>{STYLE}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
    summary = {
        "model": model,
        "version": version,
        "stage": v.stage,
        "integrity_ok": all(s == "ok" for s in integrity.values()),
        "worse_slices": worse,
        "verdicts": len(verdicts),
    }
    return page, summary


def write(model: str, version: str, out: Path) -> dict[str, Any]:
    page, summary = build(model, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return {**summary, "path": str(out), "bytes": len(page.encode())}
