"""Plotly figures of the dashboard (figures only: the pages decide where they go)."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.data.categories import CATEGORIES
from dashboard import backdrop

# An open map style: tiles from OpenStreetMap's contributors via CARTO, no access token.
MAP_STYLE = "carto-positron"
# A style built into plotly: no tiles, nothing fetched.
OFFLINE_STYLE = "white-bg"
PALETTE = px.colors.qualitative.Bold
STAGE_COLOURS = {
    "production": "#2e7d32",
    "staging": "#ef6c00",
    "candidate": "#1565c0",
    "archived": "#9e9e9e",
}


# A legend above the plot, under the title: never over tilted or long axis labels.
LEGEND_ON_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "xanchor": "left"}


def _layout(fig: go.Figure, height: int = 360, **kwargs: Any) -> go.Figure:
    margin = kwargs.pop("margin", {"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_layout(height=height, margin=margin, **kwargs)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def loss_curves(history: Mapping[str, Sequence[float]]) -> go.Figure:
    """Training curves per epoch; validation series dashed beside their training series."""
    fig = go.Figure()
    for i, (name, values) in enumerate(sorted(history.items())):
        ys = [float(v) for v in values if isinstance(v, int | float)]
        if not ys:
            continue
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(ys) + 1)),
                y=ys,
                mode="lines",
                name=name,
                line={
                    "dash": "dash" if name.startswith("val") else "solid",
                    "color": PALETTE[i % len(PALETTE)],
                },
            )
        )
    epochs = max((len(v) for v in history.values()), default=1)
    fig.update_xaxes(title="epoch", dtick=max(1, math.ceil(epochs / 12)))
    fig.update_yaxes(title="value")
    return _layout(fig, title="Training history", hovermode="x unified")


def metric_bars(long: pd.DataFrame) -> go.Figure:
    """One panel per metric (each on its own scale), one bar per version in its colour.

    One bar trace per panel, coloured bar by bar, and each version named once in the legend:
    Plotly Express's facets drew a trace per version and panel, which took the browser about
    0.7 s of the Compare page's visit for six metrics, against 0.3 s so.
    """
    metrics = list(dict.fromkeys(long["metric"]))
    versions = list(dict.fromkeys(long["version"]))
    colour = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(versions)}
    wrap = min(3, max(1, len(metrics)))
    rows = math.ceil(len(metrics) / wrap)
    fig = make_subplots(
        rows=rows,
        cols=wrap,
        subplot_titles=metrics,
        horizontal_spacing=0.07,
        vertical_spacing=0.12 if rows > 1 else 0.0,
    )
    for i, metric in enumerate(metrics):
        data = long[long["metric"] == metric]
        fig.add_trace(
            go.Bar(
                x=data["version"],
                y=data["value"],
                marker_color=[colour[v] for v in data["version"]],
                hovertemplate="%{x}<br>" + html.escape(str(metric)) + " = %{y:.4g}<extra></extra>",
                showlegend=False,
            ),
            row=i // wrap + 1,
            col=i % wrap + 1,
        )
    for version in versions:  # the legend: an empty bar per version
        fig.add_trace(go.Bar(x=[None], y=[None], name=version, marker_color=colour[version]))
    fig.update_yaxes(showticklabels=True, title=None)
    fig.update_xaxes(title=None, showticklabels=False)
    return _layout(fig, height=260 * rows + 60, showlegend=True, barmode="overlay")


def trend(frame: pd.DataFrame, metric: str, *, production: str | None = None) -> go.Figure:
    """A metric across every version of a model, in version order, coloured by stage."""
    data = frame.dropna(subset=[metric])
    fig = go.Figure(
        go.Scatter(
            x=data["version"],
            y=data[metric],
            mode="lines+markers",
            line={"color": "#90a4ae"},
            marker={
                "size": [14 if v == production else 8 for v in data["version"]],
                "color": [STAGE_COLOURS.get(s, "#9e9e9e") for s in data["stage"]],
                "line": {"width": 1, "color": "white"},
            },
            text=data["stage"],
            hovertemplate="%{x} (%{text})<br>" + metric + " = %{y:.4f}<extra></extra>",
            name=metric,
        )
    )
    fig.update_xaxes(title="version", type="category")
    fig.update_yaxes(title=metric)
    return _layout(fig, title=f"{metric} across versions")


def overlap_histogram(overlap: Sequence[float], k: int) -> go.Figure:
    fig = px.histogram(x=list(overlap), nbins=k + 1, range_x=[-0.05, 1.05])
    fig.update_xaxes(title=f"overlap@{k} per user")
    fig.update_yaxes(title="users")
    return _layout(fig, height=300, bargap=0.1)


def category_mix(frame: pd.DataFrame) -> go.Figure:
    """``category, version, share`` as grouped horizontal bars."""
    fig = px.bar(
        frame,
        y="category",
        x="share",
        color="version",
        barmode="group",
        orientation="h",
        color_discrete_sequence=PALETTE,
    )
    fig.update_xaxes(tickformat=".0%", title="share of list slots")
    fig.update_yaxes(title=None, categoryorder="array", categoryarray=list(reversed(CATEGORIES)))
    n = frame["category"].nunique() if not frame.empty else 1
    return _layout(fig, height=max(300, 28 * n + 80), legend=LEGEND_ON_TOP)


def category_scores(
    predicted: Mapping[str, np.ndarray], given: Sequence[float] | None = None
) -> go.Figure:
    """Predicted 0–5 scores of the 29 categories per version; the user's own ratings as dots."""
    fig = go.Figure()
    for i, (label, scores) in enumerate(predicted.items()):
        fig.add_trace(
            go.Bar(
                x=list(CATEGORIES),
                y=[float(s) for s in scores],
                name=label,
                marker_color=PALETTE[i % len(PALETTE)],
            )
        )
    if given is not None:
        rated = [(c, float(r)) for c, r in zip(CATEGORIES, given, strict=True) if r > 0]
        if rated:
            fig.add_trace(
                go.Scatter(
                    x=[c for c, _ in rated],
                    y=[r for _, r in rated],
                    mode="markers",
                    name="user's rating",
                    marker={"symbol": "diamond", "size": 11, "color": "black"},
                )
            )
    fig.update_yaxes(range=[0, 5.2], title="score (0–5)")
    fig.update_xaxes(tickangle=-45)
    return _layout(
        fig,
        height=440,
        barmode="group",
        title={"text": "Predicted category scores", "y": 0.98, "yanchor": "top"},
        legend=LEGEND_ON_TOP,
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )


def _circle(lat: float, lng: float, radius_m: float, points: int = 72) -> tuple[list, list]:
    angles = np.linspace(0, 2 * np.pi, points)
    dlat = radius_m / 6_371_000 * 180 / np.pi
    dlng = dlat / np.cos(np.radians(lat))
    return list(lat + dlat * np.sin(angles)), list(lng + dlng * np.cos(angles))


TILE_URL = "https://a.basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png"
TILE_ATTRIBUTION = "© OpenStreetMap contributors © CARTO"


def _trace(tiles: bool, lat: Any, lng: Any, **style: Any) -> go.Scattermap | go.Scatter:
    """One layer of :func:`places_map`, on a street map or on the plain plot.

    Both draw the same marks; only the trace type differs, and with it the axes: a street map
    takes ``lat``/``lon``, the plain plot puts longitude on x and latitude on y.
    """
    if tiles:
        return go.Scattermap(lat=lat, lon=lng, **style)
    return go.Scatter(x=lng, y=lat, **style)  # SVG: no WebGL, which software rendering makes slow


def places_map(
    items: Sequence[Any],
    *,
    lat: float,
    lng: float,
    radius_m: float = 2000.0,
    height: int = 520,
    background: tuple[np.ndarray, np.ndarray] | None = None,
    tiles: bool = False,
    colour: str = PALETTE[0],
    title: str | None = None,
) -> go.Figure:
    """One version's places, numbered by rank, around the user and the search radius.

    Without ``tiles`` (the default: tiles come from the internet, which many sites lack, and a
    tile map whose style cannot be fetched draws nothing at all) this is a plain plot drawn by
    the browser alone: the catalogue's places (``background``) outline the city, as one picture
    (:mod:`dashboard.backdrop`), east-west distances scaled to north-south ones at this
    latitude. With ``tiles`` the same marks go on a street map.
    """
    labels = [str(rank) for rank in range(1, len(items) + 1)]
    hover = [
        f"{rank}. {html.escape(str(r.name))}<br>{html.escape(str(r.category))}"
        f" · score {float(r.score):.3f} · {float(r.distance_m):.0f} m"
        for rank, r in enumerate(items, start=1)
    ]
    ring_lat, ring_lng = _circle(lat, lng, radius_m)
    place_lat = [float(r.lat) for r in items]
    place_lng = [float(r.lng) for r in items]
    # A street map's markers take no outline (plotly refuses ``line`` on them).
    marker = {"size": 20, "color": colour}
    if not tiles:
        marker["line"] = {"width": 1, "color": "white"}
    numbers = {"color": "white", "size": 11}
    radius_name = f"{radius_m / 1000:g} km radius"
    span_lat = radius_m * 1.25 / 6_371_000 * 180 / np.pi
    span_lng = span_lat / max(0.05, math.cos(math.radians(lat)))
    fig = go.Figure()
    if background is not None and tiles:
        fig.add_trace(
            _trace(
                tiles,
                background[0],
                background[1],
                mode="markers",
                marker={"size": 4, "color": "#b0bec5", "opacity": 0.5},
                name="catalogue",
                hoverinfo="skip",
            )
        )
    elif background is not None:
        _backdrop(
            fig, background, lat=lat, lng=lng, span_lat=span_lat, span_lng=span_lng, height=height
        )
    ring = _trace(
        tiles,
        ring_lat,
        ring_lng,
        mode="lines",
        line={"color": "#607d8b", "width": 1},
        name=radius_name,
        hoverinfo="skip",
    )
    places = _trace(
        tiles,
        place_lat,
        place_lng,
        mode="markers+text",
        marker=marker,
        text=labels,
        # The plain plot centres the numbers on their marks; a street map keeps its default.
        **({} if tiles else {"textposition": "middle center"}),
        textfont=numbers,
        hovertext=hover,
        hoverinfo="text",
        name="places by rank",
    )
    user = _trace(
        tiles,
        [lat],
        [lng],
        mode="markers",
        # Map symbols are icon names: the plain plot's "x" is not one of them.
        marker={"size": 14, "color": "black"}
        if tiles
        else {"size": 14, "color": "black", "symbol": "x"},
        name="user",
        hoverinfo="name",
    )
    # Later traces draw on top: on a street map the user's mark covers the places, on the
    # plain plot the numbered places cover it.
    for trace in (ring, places, user) if tiles else (ring, user, places):
        fig.add_trace(trace)
    if tiles:
        fig.update_layout(
            map={
                "style": OFFLINE_STYLE,
                "center": {"lat": lat, "lon": lng},
                "zoom": 13,
                "layers": [
                    {
                        "below": "traces",
                        "sourcetype": "raster",
                        "sourceattribution": TILE_ATTRIBUTION,
                        "source": [TILE_URL],
                    }
                ],
            }
        )
    else:
        fig.update_xaxes(range=[lng - span_lng, lng + span_lng], visible=False, constrain="domain")
        fig.update_yaxes(
            range=[lat - span_lat, lat + span_lat],
            visible=False,
            scaleanchor="x",
            scaleratio=1 / max(0.05, math.cos(math.radians(lat))),
        )
        fig.update_layout(plot_bgcolor="white")
    fig.update_layout(
        legend={"orientation": "h", "y": -0.01, "yanchor": "top", "x": 0},
        title={"text": title} if title else None,
    )
    return _layout(fig, height=height)


def _backdrop(
    fig: go.Figure,
    background: tuple[np.ndarray, np.ndarray],
    *,
    lat: float,
    lng: float,
    span_lat: float,
    span_lng: float,
    height: int,
) -> None:
    """The catalogue's places behind a plain plot, as one picture of the user's surroundings
    (half as far again as the frame on each side, for a little panning; the rest is cut off).

    The picture, one and a half frames wide, has one and a half pixels for each of the chart's
    height, so the browser only ever shrinks it; its dots are as large as the 4-pixel markers
    they replace on a plot area about 80 pixels shorter than the chart (title and legend).
    The legend keeps a "catalogue" entry.
    """
    frame = backdrop.Frame(
        west=lng - 1.5 * span_lng,
        east=lng + 1.5 * span_lng,
        south=lat - 1.5 * span_lat,
        north=lat + 1.5 * span_lat,
        pixels=3 * height // 2,
    )
    fig.add_layout_image(
        source=backdrop.picture(
            np.asarray(background[0]),
            np.asarray(background[1]),
            frame,
            radius_px=2 * height / max(height - 80, 80),
        ),
        xref="x",
        yref="y",
        x=frame.west,
        y=frame.north,
        sizex=frame.east - frame.west,
        sizey=frame.north - frame.south,
        xanchor="left",
        yanchor="top",
        sizing="stretch",
        layer="below",
    )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={"size": 4, "color": "#b0bec5", "opacity": 0.7},
            name="catalogue",
            hoverinfo="skip",
        )
    )


def production_spans(
    spans: Sequence[tuple[str, dt.datetime, dt.datetime | None]], *, now: dt.datetime | None = None
) -> go.Figure:
    """What was in production when: one bar per production span."""
    now = now or dt.datetime.now(dt.UTC)
    frame = pd.DataFrame(
        [
            {
                "version": version,
                "from": start,
                "until": end or now,
                "state": "in production" if end is None else "replaced",
            }
            for version, start, end in spans
        ]
    )
    fig = px.timeline(
        frame,
        x_start="from",
        x_end="until",
        y="version",
        color="state",
        color_discrete_map={"in production": STAGE_COLOURS["production"], "replaced": "#78909c"},
        hover_data={"from": True, "until": True, "state": False},
    )
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=list(dict.fromkeys(reversed(frame["version"].tolist()))),
        title=None,
    )
    rows = frame["version"].nunique()
    return _layout(fig, height=max(220, 40 * rows + 120), title="Production over time")
