"""One rule for which way a metric improves (core.metrics.direction), used by every interface."""

from __future__ import annotations

import ast
from types import SimpleNamespace
from typing import Any

import pytest

from core.metrics import direction
from core.registry.gates import DEFAULT_METRIC_GATES
from core.retraining import policies
from core.review import comparison
from tests.conftest import PROJECT_ROOT

LOWER = ["rmse", "mae", "mse", "validation_loss", "error_rate", "latency_ms", "duration_s"]
HIGHER = ["ndcg@5", "coverage@10", "precision@5", "click_through"]


@pytest.mark.parametrize("metric", LOWER)
def test_errors_losses_and_costs_are_lower_is_better(metric: str) -> None:
    assert not direction.higher_is_better(metric)
    assert not direction.higher_is_better(metric.upper())


@pytest.mark.parametrize("metric", HIGHER)
def test_other_metrics_are_higher_is_better(metric: str) -> None:
    assert direction.higher_is_better(metric)


def test_a_model_may_state_a_metric_s_direction() -> None:
    settings = {"gates": {"latency_ms": {"higher_is_better": True}, "ndcg@5": {"tolerance": 0}}}
    assert direction.higher_is_better("latency_ms", settings)
    assert direction.higher_is_better("ndcg@5", settings)  # no direction given: the name's
    assert not direction.higher_is_better("duration_s", settings)
    assert not direction.higher_is_better("rmse", {"gates": "not a mapping"})


def test_the_default_gates_follow_the_rule() -> None:
    for metric, rule in DEFAULT_METRIC_GATES.items():
        assert rule["higher_is_better"] == direction.higher_is_better(metric), metric


def _version(version: str, **metrics: float) -> Any:
    return SimpleNamespace(
        model="m", version=version, label=f"m@{version}", metrics=metrics, stage="candidate"
    )


@pytest.mark.parametrize("metric", ["latency_ms", "duration_s"])
def test_comparison_and_policies_agree_on_latency_and_duration(metric: str) -> None:
    old, new = _version("1.0.0", **{metric: 20.0}), _version("1.1.0", **{metric: 10.0})
    table = comparison.compare_metrics([new], production=old)
    assert table.directions == {metric: False}

    run = SimpleNamespace(metric=metric, margin=5.0)
    gate = policies._margin_gate(run, new, old, {})  # type: ignore[arg-type]
    assert gate["figures"]["higher_is_better"] is False
    assert gate["passed"] and gate["figures"]["gain"] == 10.0


def test_no_other_definition_of_the_rule() -> None:
    """No other function, and no table of directions by metric name, decides it."""
    found = []
    for top in ("core", "api", "jobs", "dashboard"):
        for path in (PROJECT_ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    node.name == "higher_is_better"
                ):
                    found.append(str(path.relative_to(PROJECT_ROOT)))
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = [t.id for t in targets if isinstance(t, ast.Name)]
                    if any("_IS_BETTER" in n.upper() for n in names):
                        found.append(f"{path.relative_to(PROJECT_ROOT)}: {names}")
    here = "core/metrics/direction.py"
    assert sorted(found) == [here, f"{here}: ['LOWER_IS_BETTER']"]


@pytest.mark.parametrize(("metric", "worse"), [("rmse", 1.2), ("ndcg@5", 0.3)])
def test_a_gate_without_a_stated_direction_follows_the_rule(metric: str, worse: float) -> None:
    """A model's gate that names a metric but not its direction: the metrics gate judges by
    the same rule (an rmse that grew fails it, as an ndcg that fell does)."""
    from core.registry.gates import metrics_gate

    model = SimpleNamespace(settings={"gates": {metric: {"tolerance": 0.01}}})
    production = SimpleNamespace(
        id=1, version="1.0.0", metrics={metric: 1.0 if metric == "rmse" else 0.5}
    )
    worse_version = SimpleNamespace(id=2, version="1.1.0", metrics={metric: worse})
    better_version = SimpleNamespace(
        id=3, version="1.2.0", metrics={metric: 0.8 if metric == "rmse" else 0.7}
    )
    assert not metrics_gate(model, worse_version, production).passed
    assert metrics_gate(model, better_version, production).passed
