"""The evidence pack of a version: one self-contained HTML file a reviewer signs off on.

Everything is inside the file (plotly's script inlined once, the map drawn as a plain scatter
of coordinates instead of map tiles), so it opens offline and can be attached to a ticket.
The page is the Jinja template ``templates/report.html.j2``, autoescaped: descriptions,
reasons and comments are user input. Only the plotly figures are HTML on purpose, and are
marked safe where they are made.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from core import registry
from core.data import catalogue, datasets
from core.data.categories import CATEGORIES
from core.errors import CoreError
from core.monitoring import drift
from core.registry import artifacts, audit
from core.registry.entities import VersionInfo
from core.review import slices
from core.serving import predict

TEMPLATES = Path(__file__).with_name("templates")
SAMPLE_LOCATION = (40.4168, -3.7038)  # Puerta del Sol
SAMPLE_USERS = 4


def _fmt(value: Any) -> str:
    """A table cell: floats to four decimals (NaN as a dash), the rest as text (escaped by
    the template)."""
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Table:
    """A table of the report; rows whose ``flags`` entry is true are highlighted."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    flags: Sequence[bool] = ()

    def flagged(self, i: int) -> bool:
        return i < len(self.flags) and bool(self.flags[i])


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=lambda value: "" if value is None else value,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    return env


# The report opens offline, away from whatever plotly default the process that built it set
# (a dashboard's template drew every trace black): each figure names its template and colours.
TEMPLATE = "plotly_white"
PALETTE = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#c62828", "#00838f", "#9e9d24")


class _Figures:
    """Plotly figures as HTML; the library's script is inlined with the first one only."""

    def __init__(self) -> None:
        self.first = True

    def html(self, fig: Any) -> Markup:
        import plotly.io as pio

        out = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs="inline" if self.first else False,
            config={"displaylogo": False, "responsive": True},
        )
        self.first = False
        # plotly's own div and script, built from our figure: HTML on purpose.
        return Markup(out)  # noqa: S704


def _metrics_table(v: VersionInfo, prod: VersionInfo | None) -> Table:
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
    headers = ["metric", "this version", label, "Δ vs production", "popularity baseline"]
    return Table([*headers, "Δ vs baseline"], rows)


@dataclass(frozen=True)
class _Slices:
    compared: bool  # a production version to compare with
    table: Table
    figure: Markup
    worse: list[tuple[str, str]] = field(default_factory=list)

    @property
    def worse_text(self) -> str:
        return ", ".join(f"{a}: {b}" for a, b in self.worse)


def _slices_section(v: VersionInfo, figures: _Figures) -> _Slices | None:
    import plotly.graph_objects as go

    rows = slices.compare_versions(v) if v.stage != "production" else []
    own = v.metadata.get("slices") or {}
    if not own:
        return None
    if rows:
        table = Table(
            ["slicing", "slice", "test users", "NDCG@5 (this)", "NDCG@5 (production)", "Δ"],
            [[r.slicing, r.bucket, r.users, r.candidate, r.reference, r.delta] for r in rows],
            [r.worse for r in rows],
        )
        worse = slices.flagged(rows)
    else:
        table = Table(
            ["slicing", "slice", "test users", "NDCG@5", "RMSE"],
            [
                [s, b, m.get("users"), m.get("ndcg@5"), m.get("rmse")]
                for s, buckets in own.items()
                for b, m in buckets.items()
            ],
        )
        worse = []
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
    return _Slices(bool(rows), table, figures.html(fig), worse)


def _drift_section(v: VersionInfo, prod: VersionInfo | None) -> dict[str, Any]:
    if v.dataset is None or prod is None or prod.dataset is None:
        return {"kind": "none"}
    if (v.dataset.name, v.dataset.version) == (prod.dataset.name, prod.dataset.version):
        return {"kind": "same", "ours": v.dataset.label}
    ours = datasets.load_users(datasets.get_dataset(v.dataset.name, v.dataset.version))
    theirs = datasets.load_users(datasets.get_dataset(prod.dataset.name, prod.dataset.version))
    result = drift.compute(theirs, ours, numeric=list(CATEGORIES))
    rows = sorted(result.columns.items(), key=lambda kv: -kv[1].score)
    return {
        "kind": "compared",
        "ours": v.dataset.label,
        "theirs": prod.dataset.label,
        "share": f"{result.drift_share:.0%}",
        "method": rows[0][1].method,
        "threshold": rows[0][1].threshold,
        "table": Table(
            ["category", "drifted", "score"],
            [[c, "yes" if d.drifted else "", d.score] for c, d in rows[:10]],
            [d.drifted for _, d in rows[:10]],
        ),
    }


def _samples_section(v: VersionInfo, figures: _Figures) -> dict[str, Any]:
    import plotly.graph_objects as go

    from core.data.generator import generate_users

    try:
        loaded = predict.load_version(v)
    except CoreError as exc:
        return {"failure": exc}
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
    shown = []
    for i, items in enumerate(lists):
        shown.append(
            {
                "liked": ", ".join(c for c, x in zip(CATEGORIES, prefs[i], strict=True) if x >= 4),
                "table": Table(
                    ["#", "place", "category", "score", "distance (m)"],
                    [
                        [n + 1, r.name, r.category, r.score, round(r.distance_m)]
                        for n, r in enumerate(items)
                    ],
                ),
            }
        )
    return {"failure": None, "figure": figures.html(fig), "users": shown}


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
    slices_view = _slices_section(v, figures)
    worse = [] if slices_view is None else slices_view.worse
    verdicts = audit.verdicts(model, version)
    events = [e for e in registry.timeline(model) if e.version == version]
    page = (
        _environment()
        .get_template("report.html.j2")
        .render(
            v=v,
            created=f"{v.created_at:%Y-%m-%d %H:%M}",
            generated=f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}",
            lineage=Table(["", "value"], lineage),
            integrity=Table(
                ["file", "SHA-256", "status"],
                [
                    [f, v.files[f][:16] + "…" if f in v.files else "not recorded", s]
                    for f, s in integrity.items()
                ],
                [s != "ok" for s in integrity.values()],
            ),
            metrics_note=prod is not None and v.dataset != prod.dataset,
            metrics=_metrics_table(v, prod),
            slices=slices_view,
            drift=_drift_section(v, prod),
            verdicts=Table(
                ["when", "auditor", "verdict", "comment"],
                [
                    [f"{a.created_at:%Y-%m-%d %H:%M}", a.auditor, a.verdict, a.comment]
                    for a in verdicts
                ],
            ),
            samples=_samples_section(v, figures),
            events=Table(
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
        )
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
