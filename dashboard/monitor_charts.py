"""Plotly figures of the drift and monitoring pages (figures only: the pages place them).

Every builder takes data that ``core`` already aggregated (drift results, their histograms,
traffic buckets) and draws it; none of them reads the database. Column names and category
labels reach the figures as trace names and axis labels, which Plotly renders as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts import PALETTE

SHARE = "drift share"
DRIFTED = "#c62828"
CALM = "#2e7d32"
REFERENCE = "#78909c"
CURRENT = "#1565c0"
VARIANT_COLOURS = {"production": "#2e7d32", "canary": "#ef6c00"}
PERCENTILE_DASH = {"latency_p50_ms": "solid", "latency_p95_ms": "dash", "latency_p99_ms": "dot"}


def _layout(fig: go.Figure, height: int = 340, **kwargs: Any) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.12, "yanchor": "top", "x": 0},
        **kwargs,
    )
    return fig


def _colour(variant: str, i: int) -> str:
    return VARIANT_COLOURS.get(variant, PALETTE[i % len(PALETTE)])


def _limit_line(
    fig: go.Figure,
    y: float,
    text: str,
    *,
    dash: str = "dash",
    colour: str = DRIFTED,
    position: str = "top left",
    row: int | None = None,
) -> None:
    """A labelled horizontal limit (a threshold, an alert level), drawn alike on every figure.

    ``row`` picks the panel of a figure with stacked panels; without it the line spans the
    figure (Plotly's own default).
    """
    where = {} if row is None else {"row": row, "col": 1}
    fig.add_hline(
        y=y,
        line={"dash": dash, "color": colour, "width": 1},
        annotation_text=text,
        annotation_position=position,
        **where,
    )


# ------------------------------------------------------------------------ drift


def drift_over_time(
    frame: pd.DataFrame,
    features: Sequence[str],
    *,
    threshold: float,
    dataset_share: float,
    alert_share: float | None = None,
    onset: Any = None,
) -> go.Figure:
    """The share of drifted columns (top) and the chosen columns' scores (bottom) over time.

    ``frame`` is :func:`core.monitoring.drift_store.history_frame`. Days whose result drifted as a
    whole
    are red on the share line; the bottom panel's dashed line is the per-column threshold.
    """
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.35, 0.65],
        subplot_titles=("Share of drifted columns", "Drift score per column"),
    )
    share = frame[frame["column"] == SHARE]
    fig.add_trace(
        go.Scatter(
            x=share["window_end"],
            y=share["score"],
            mode="lines+markers",
            name=SHARE,
            line={"color": "#455a64"},
            marker={
                "size": 7,
                "color": [DRIFTED if d else CALM for d in share["drifted"]],
            },
            customdata=share["id"],
            hovertemplate="%{x}<br>drift share %{y:.0%}<br>result #%{customdata}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    _limit_line(fig, dataset_share, f"dataset drift ≥ {dataset_share:.0%}", row=1)
    if alert_share is not None:
        _limit_line(
            fig,
            alert_share,
            f"alert ≥ {alert_share:.0%}",
            dash="dot",
            colour="#ef6c00",
            position="bottom left",
            row=1,
        )
    columns = frame[frame["column"].isin(list(features))]
    for i, name in enumerate(features):
        part = columns[columns["column"] == name]
        if part.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=part["window_end"],
                y=part["score"],
                mode="lines+markers" if len(part) <= 60 else "lines",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)], "width": 1.6},
                marker={"size": 5},
                hovertemplate="%{fullData.name}<br>%{x}<br>score %{y:.3f}<extra></extra>",
            ),
            row=2,
            col=1,
        )
    _limit_line(fig, threshold, f"threshold {threshold:g}", row=2)
    if onset is not None:  # the start of the current episode, on both panels
        fig.add_vline(x=onset, line={"dash": "dot", "color": DRIFTED, "width": 1.5})
        fig.add_annotation(
            x=onset,
            y=1.04,
            xref="x",
            yref="paper",
            text="drift began",
            showarrow=False,
            xanchor="left",
            font={"size": 11, "color": DRIFTED},
        )
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", title="score", row=2, col=1)
    return _layout(fig, height=560, hovermode="closest")


def distribution(summary: Mapping[str, Any], column: str) -> go.Figure:
    """Reference against current for one column, as shares of each side's rows.

    ``summary`` is one entry of a stored result's ``summaries``: counts per rating value
    (``discrete``), per histogram bin (``numeric``) or per label (``categorical``). Shares, not
    counts, because the two sides rarely hold the same number of rows.
    """
    kind = summary.get("kind")
    if kind == "numeric":
        edges = [float(e) for e in summary["edges"]]
        labels = [f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        x_title = "value (bins)"
    elif kind == "discrete":
        labels = [f"{float(v):g}" for v in summary["values"]]
        x_title = "value"
    else:
        labels = [str(v) for v in summary["values"]]
        x_title = None
    fig = go.Figure()
    for side, colour in (("reference", REFERENCE), ("current", CURRENT)):
        counts = [int(c) for c in summary[side]]
        total = sum(counts) or 1
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[c / total for c in counts],
                name=f"{side} ({sum(counts):,} rows)",
                marker_color=colour,
                customdata=counts,
                hovertemplate="%{x}: %{y:.1%} (%{customdata} rows)<extra></extra>",
            )
        )
    fig.update_xaxes(type="category", title=x_title)
    if kind == "categorical":
        fig.update_xaxes(tickangle=-40)
    fig.update_yaxes(tickformat=".0%", title="share of rows")
    return _layout(fig, height=380, barmode="group", title=f"{column}: reference vs current")


# ------------------------------------------------------------------------ traffic


def volume(frame: pd.DataFrame) -> go.Figure:
    """Requests per bucket, stacked by variant; failed requests drawn over them."""
    fig = go.Figure()
    for i, (variant, part) in enumerate(frame.groupby("variant", sort=False)):
        fig.add_trace(
            go.Bar(
                x=part["start"],
                y=part["requests"],
                name=str(variant),
                marker_color=_colour(str(variant), i),
            )
        )
    errors = frame.groupby("start", as_index=False)["errors"].sum()
    if errors["errors"].any():
        fig.add_trace(
            go.Scatter(
                x=errors["start"],
                y=errors["errors"],
                mode="lines",
                name="errors (all variants)",
                line={"color": DRIFTED, "width": 1},
            )
        )
    fig.update_yaxes(title="requests", rangemode="tozero")
    return _layout(fig, barmode="stack", title="Volume")


def latency(frame: pd.DataFrame) -> go.Figure:
    """p50, p95 and p99 latency per bucket: one colour per variant, one dash per percentile."""
    fig = go.Figure()
    for i, (variant, part) in enumerate(frame.groupby("variant", sort=False)):
        for column, dash in PERCENTILE_DASH.items():
            label = column.removeprefix("latency_").removesuffix("_ms")
            fig.add_trace(
                go.Scatter(
                    x=part["start"],
                    y=part[column],
                    mode="lines",
                    name=f"{variant} {label}",
                    line={"color": _colour(str(variant), i), "dash": dash, "width": 1.6},
                )
            )
    fig.update_yaxes(title="ms", rangemode="tozero")
    return _layout(fig, title="Latency (p50, p95, p99)")


def rate(frame: pd.DataFrame, column: str, title: str, *, limit: float | None = None) -> go.Figure:
    """A per-bucket rate (error rate, click-through) per variant, with an optional alert line."""
    fig = go.Figure()
    for i, (variant, part) in enumerate(frame.groupby("variant", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=part["start"],
                y=part[column],
                mode="lines+markers" if len(part) <= 60 else "lines",
                name=str(variant),
                line={"color": _colour(str(variant), i), "width": 1.6},
                customdata=part["requests"],
                hovertemplate="%{x}<br>%{y:.1%} of %{customdata} requests<extra></extra>",
            )
        )
    if limit is not None:
        _limit_line(fig, limit, f"alert ≥ {limit:.0%}")
    fig.update_yaxes(tickformat=".0%", title=None, rangemode="tozero")
    return _layout(fig, title=title)


def resources(frame: pd.DataFrame) -> go.Figure:
    """CPU (cores busy) above, resident memory below, one colour per process."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for i, (process, part) in enumerate(frame.groupby("process", sort=True)):
        colour = _colour(str(part["kind"].iloc[0]), i)
        for row, column in ((1, "cpu"), (2, "rss_mb")):
            fig.add_trace(
                go.Scatter(
                    x=part["ts"],
                    y=part[column],
                    mode="lines",
                    name=str(process),
                    legendgroup=str(process),
                    showlegend=row == 1,
                    line={"color": colour, "width": 1.4},
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(title="CPU (cores)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title="memory (MB)", rangemode="tozero", row=2, col=1)
    return _layout(fig, height=420, title="Service resources (API and worker processes)")


def health_over_time(
    frame: pd.DataFrame, metric: str, label: str, changes: list[tuple[str, Any]]
) -> go.Figure:
    """One health figure per window and variant, with a mark where production changed."""
    fig = go.Figure()
    part = frame[frame["metric"] == metric]
    for i, (variant, rows) in enumerate(part.groupby("variant", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=rows["window_start"],
                y=rows["value"],
                mode="lines+markers" if len(rows) <= 60 else "lines",
                name=str(variant),
                line={"color": _colour(str(variant), i), "width": 1.6},
                customdata=rows["version"],
                hovertemplate="%{x}<br>%{y:.3f} (version %{customdata})<extra></extra>",
            )
        )
    if not part.empty:
        lo, hi = part["window_start"].min(), part["window_start"].max()
        for version, since in changes:
            if lo <= since <= hi:
                fig.add_vline(x=since, line={"dash": "dot", "color": "#888", "width": 1})
                fig.add_annotation(
                    x=since,
                    y=1,
                    yref="paper",
                    text=f"→ {version}",
                    showarrow=False,
                    xanchor="left",
                    yanchor="top",
                    font={"size": 11},
                )
    fig.update_yaxes(title=None)
    return _layout(fig, title=label)


def health_across_versions(frame: pd.DataFrame, metrics: dict[str, str]) -> go.Figure:
    """Each version's mean health over its production windows, versions in creation order:
    a feedback loop that narrows the catalogue shows as a line falling retrain after retrain."""
    fig = go.Figure()
    labels = [
        f"{v} ({t})" if t else str(v)
        for v, t in zip(frame["version"], frame["trigger"], strict=True)
    ]
    for i, (name, label) in enumerate(metrics.items()):
        if name not in frame or frame[name].isna().all():
            continue
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=frame[name],
                mode="lines+markers",
                name=label,
                line={"color": _colour(label, i), "width": 1.6},
                customdata=frame["windows"],
                hovertemplate="%{x}<br>%{y:.3f} over %{customdata} windows<extra></extra>",
            )
        )
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(title=None)
    return _layout(fig, title="Across versions (mean over each version's production windows)")
