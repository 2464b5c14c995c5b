"""Built charts, kept by their inputs.

A Plotly figure object validates every property as it is set: building the Compare page's four
charts took 0.6 s of each of its runs on a 2-core machine, and Preview's map and scores 0.1 s,
though a rerun (a widget elsewhere on the page, a revisit) asks for the very same charts. Each
is kept here by the chart's name and its inputs (data frames, arrays and lists hashed by value)
and shared: it is never changed once built, and ``st.plotly_chart`` copies what it sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from dashboard import charts
from dashboard.cache.cached import RESULT_TTL, cached


def figure(chart: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
    """``chart(*args, **kwargs)`` for a chart of :mod:`dashboard.charts`, built once per
    distinct inputs."""
    if getattr(charts, chart.__name__, None) is not chart:
        raise ValueError(f"{chart!r} is not a chart of dashboard.charts")
    return _built(chart.__name__, *args, **kwargs)


@cached(resource=True, per_registry=False, ttl=RESULT_TTL, max_entries=256)
def _built(name: str, *args: Any, **kwargs: Any) -> go.Figure:
    built: go.Figure = getattr(charts, name)(*args, **kwargs)
    return built
