"""Small building blocks the pages share: safe text, stage badges, messages, pickers.

Text that users typed (reasons, comments, descriptions, user ids from datasets) goes through
:func:`md` before it is placed inside Markdown, and never into HTML.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import CoreError
from core.registry.entities import AuditVerdict, ModelInfo, StageEvent, VersionInfo

STAGE_COLOURS = {
    "production": "green",
    "staging": "orange",
    "candidate": "blue",
    "archived": "gray",
}
FLASH_KEY = "ui_flash"
MODEL_KEY = "ui_model"  # the model last chosen on any page
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$:])")


def md(text: object) -> str:
    """Escape user-supplied text for use inside Markdown (no links, emphasis or HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def badge(stage: str) -> str:
    """A coloured Markdown badge for a stage name (stage names come from the registry)."""
    colour = STAGE_COLOURS.get(stage, "gray")
    return f":{colour}-badge[{md(stage)}]"


def when(value: dt.datetime | None) -> str:
    """A UTC timestamp as people read it."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return "never"
    now = now or dt.datetime.now(dt.UTC)
    seconds = max(0.0, (now - value).total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def pct(value: Any, digits: int = 1) -> str:
    """A share as people read it: ``53.3%``; ``—`` when there is none."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return f"{float(value):.{digits}%}"


def dash(value: Any) -> Any:
    """``—`` instead of a missing value (tables show None as "None")."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    return value


def fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


# ------------------------------------------------------------------------ messages


def flash(kind: str, message: str) -> None:
    """Show a message on the next run (after a callback changed something)."""
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop(FLASH_KEY, []):
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(
            md(message)
        )


def error(exc: CoreError) -> None:
    st.error(md(exc))


def guarded(action: Callable[[], str | None]) -> bool:
    """Run a write from a widget callback; flash its outcome or the core's reason for refusing.

    Registry caches are cleared after a successful write, so the run that follows the callback
    (and every other page) shows the new state.
    """
    from dashboard import cache

    try:
        message = action()
    except CoreError as exc:
        flash("error", str(exc))
        cache.registry_changed()  # a refusal often means the page was stale: re-read
        return False
    cache.registry_changed()
    if message:
        flash("success", message)
    return True


def act(action: Callable[[], str | None]) -> None:
    """:func:`guarded`, shaped as a widget callback (``on_click=ui.act, args=(action,)``)."""
    guarded(action)


# ------------------------------------------------------------------------ map tiles

# Loads one map tile in the browser and says whether it came: the server cannot know whether
# the person's browser reaches the tile servers, and a tile map that cannot draws nothing.
_TILE_PROBE_JS = """
export default function ({ data, setStateValue }) {
  if (!data || !data.url) return;
  const img = new Image();
  // Only a success is reported: offline, the page already shows what it should, and a
  // report would only cost a rerun.
  img.onload = () => setStateValue("reachable", true);
  img.src = data.url;
}
"""
_tile_probe = st.components.v2.component("planwise_tile_probe", js=_TILE_PROBE_JS)
TILES_KEY = "ui_tiles_reachable"


def tiles_reachable(url: str) -> bool | None:
    """True once this browser has loaded a map tile; None until then (offline, for ever).

    Probed until it succeeds; the answer is kept for every page."""
    known = st.session_state.get(TILES_KEY)
    if known is not None:
        return bool(known)
    result = _tile_probe(
        data={"url": url},
        key="ui_tile_probe",
        default={"reachable": None},
        on_reachable_change=lambda: None,
        height=0,
    )
    reachable = getattr(result, "reachable", None)
    if reachable is not None:
        st.session_state[TILES_KEY] = bool(reachable)
    return None if reachable is None else bool(reachable)


# ------------------------------------------------------------------------ charts

CHART_WARM_UP_KEY = "ui_chart_warm_up"
_CLEAR = "rgba(0,0,0,0)"
# The kinds of marks most pages draw (numbered markers, a line, bars), all transparent, in the
# smallest chart Plotly draws: nothing to see, but the library is loaded and has drawn.
_WARM_UP_FIGURE = {
    "data": [
        {
            "type": "scatter",
            "x": [0, 1],
            "y": [0, 1],
            "text": ["1", "2"],
            "mode": "markers+text+lines",
            "opacity": 0,
            "hoverinfo": "skip",
        },
        {"type": "bar", "x": [0, 1], "y": [1, 2], "opacity": 0, "hoverinfo": "skip"},
    ],
    "layout": {
        "height": 10,
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "showlegend": False,
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "paper_bgcolor": _CLEAR,
        "plot_bgcolor": _CLEAR,
    },
}


def load_charts_early() -> None:
    """Have the browser load and run the chart library while it waits on the sign-in page.

    The first chart a browser draws after the dashboard opens first loads Streamlit's Plotly
    bundle (several MB of script) and runs its set-up: 0.45 s on a 2-core machine, and the
    first draws are slower again. The first page with charts paid for it (Compare's first
    visit took 2.4 s). An empty chart at the foot of the page moves that to the time a person
    spends typing a password, as the server's warm-up does for its side.
    """
    st.plotly_chart(
        _WARM_UP_FIGURE,
        key=CHART_WARM_UP_KEY,
        theme=None,
        config={"displayModeBar": False, "staticPlot": False},
    )


# ------------------------------------------------------------------------ pickers


def default_model(models: Sequence[ModelInfo]) -> str:
    """The model a first visit is most likely about: one that serves traffic and is not the
    popularity baseline, the most actively developed first."""
    ranked = sorted(
        models,
        key=lambda m: (m.production is None, m.family == "popularity", -m.version_count, m.name),
    )
    return ranked[0].name


def pick_model(key: str, models: Sequence[ModelInfo], *, label: str = "Model") -> ModelInfo:
    """A model selector whose choice follows the user from page to page.

    Streamlit forgets a widget's state when its page is left, so the choice is also kept in
    :data:`MODEL_KEY` (and in the ``model`` query parameter, for links).
    """
    names = [m.name for m in models]
    if st.session_state.get(key) not in names:
        wanted = st.session_state.get(MODEL_KEY) or st.query_params.get("model")
        st.session_state[key] = wanted if wanted in names else default_model(models)
    name = st.selectbox(label, names, key=key)
    st.session_state[MODEL_KEY] = name
    st.query_params["model"] = name
    return next(m for m in models if m.name == name)


def facts(items: Sequence[tuple[str, str]], *, columns: int = 4) -> None:
    """Short labelled values in a row (smaller than st.metric, for text rather than numbers)."""
    cols = st.columns(columns)
    for i, (label, value) in enumerate(items):
        with cols[i % columns]:
            st.caption(label)
            st.markdown(f"**{md(value)}**")


def empty_state(message: str) -> None:
    st.info(message, icon=":material/info:")


def metrics_frame(items: Sequence[VersionInfo]) -> pd.DataFrame:
    from core.review.comparison import numeric_metrics

    return pd.DataFrame.from_dict(
        {v.version: numeric_metrics(v.metrics) for v in items}, orient="index"
    )


def stage_events(events: Sequence[StageEvent], *, key: str, with_version: bool = True) -> None:
    """The audit log's rows as a table: who moved what where, why, and the gates it passed."""
    rows = []
    for e in events:
        row: dict[str, Any] = {"when": e.created_at, "action": e.action}
        if with_version:
            row["version"] = e.version
        row |= {
            "from": e.from_stage or "",
            "to": e.to_stage,
            "by": e.actor,
            "reason": e.reason,
            "gates": " · ".join(
                f"{g.get('name')} {'✓' if g.get('passed') else '✗'}" for g in e.gates
            ),
        }
        rows.append(row)
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key=key,
        column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )


def verdicts(
    found: Sequence[AuditVerdict], *, with_sample: bool = False, key: str | None = None
) -> None:
    """A version's audit verdicts as a table, in the order ``core`` returns them.

    The Models and Audit pages list the same verdicts; only the Audit page, where the sample is
    reviewed, adds how many users each verdict's sample held.
    """
    rows = []
    for a in found:
        row: dict[str, Any] = {
            "when": a.created_at,
            "auditor": a.auditor,
            "verdict": a.verdict,
            "comment": a.comment,
        }
        if with_sample:
            row["sample users"] = a.sample.get("users", "")
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=key)
