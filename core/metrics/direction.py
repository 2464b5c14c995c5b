"""Which way a metric improves: the one rule the comparison tables, the promotion policies and
the dashboard colour deltas by.

A model may state a metric's direction in its settings (``settings["gates"][metric]
["higher_is_better"]``, the same entry its promotion gates read). Otherwise the name decides:
errors, losses and costs (``rmse``, ``mae``, ``mse``, ``loss``, ``error``, ``latency``,
``duration``) are better smaller, anything else (ndcg@5, coverage@10, …) better larger. The
default gates of :mod:`core.registry.gates` follow the same rule (a test checks it), so this
module needs nothing above it and every package may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Name fragments of metrics whose smaller values are better.
LOWER_IS_BETTER = ("rmse", "mae", "mse", "loss", "error", "latency", "duration")


def higher_is_better(metric: str, model_settings: Mapping[str, Any] | None = None) -> bool:
    """Whether a larger ``metric`` is better, for ``model_settings``' model if given."""
    configured = (model_settings or {}).get("gates")
    rule = configured.get(metric) if isinstance(configured, Mapping) else None
    if isinstance(rule, Mapping) and "higher_is_better" in rule:
        return bool(rule["higher_is_better"])
    name = metric.lower()
    return not any(token in name for token in LOWER_IS_BETTER)
