"""What the worker does with a run: train, then apply the run's promotion policy.

:func:`execute` trains the run's model and registers the version; :func:`apply_policy` moves it
as far as the policy allows (``candidate``: nowhere; ``staging``: when the staging gates pass;
``production``: when it beats production by the run's margin on its metric and the production
gates pass, never for a model that requires an audit approval or has no production version).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.errors import BadInput, CoreError, GateFailed
from core.families import fine_tunes_from
from core.metrics.direction import higher_is_better
from core.registry.entities import VersionInfo
from core.retraining import runs
from core.retraining.runs import RunInfo


@dataclass(frozen=True)
class PolicyOutcome:
    """What the promotion policy did with a new version, and the gates it faced."""

    promoted_to: str | None
    gates: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class RunOutcome:
    version: str
    dataset: str | None
    metrics: dict[str, Any]
    duration_s: float
    policy: PolicyOutcome


def execute(
    run: RunInfo,
    *,
    progress: Callable[[float, str], None] | None = None,
    actor: Actor = SYSTEM,
) -> RunOutcome:
    """Train the run's model, register the version and apply the run's policy.

    Training errors propagate (the worker records them). A refused promotion is not an error:
    the version stays a candidate and the outcome says why, with the gates' figures.
    """
    from core import training  # heavy: families import numpy, scikit-learn, TensorFlow

    what = {"schedule": "scheduled", "drift": "drift-triggered", "manual": "manual"}[run.trigger]
    description = f"{what} retraining {runs.version_tag(run.id)}"
    if run.reason:
        description = f"{what} retraining: {run.reason} {runs.version_tag(run.id)}"
    parent = None
    if fine_tunes_from(run.family):
        # Fine-tuning starts from what serves now (else the newest version).
        base = registry.find_version(run.model, "production")
        if base is None:
            latest = registry.get_model(run.model).latest
            if latest is None:
                raise BadInput(f"{run.family} model {run.model!r} has no version to fine-tune")
            base = registry.get_version(run.model, latest)
        parent = (base.model, base.version)
    result = training.train(
        actor=actor,
        family=run.family,
        dataset=run.dataset_ref,
        model=run.model,
        params=run.params or None,
        parent=parent,
        progress=progress,
        description=description,
    )
    version = result.version
    outcome = apply_policy(run, version, actor=actor)
    return RunOutcome(
        version=version.version,
        dataset=None if version.dataset is None else version.dataset.label,
        metrics=dict(result.metrics),
        duration_s=float(result.duration_s),
        policy=outcome,
    )


def apply_policy(run: RunInfo, version: VersionInfo, *, actor: Actor = SYSTEM) -> PolicyOutcome:
    """Move ``version`` as far as the run's policy allows."""
    reason = f"policy {run.policy} of {run.trigger} run #{run.id}"
    if run.policy == "candidate":
        return PolicyOutcome(None, [], f"registered {version.version} as a candidate")
    if run.policy == "staging":
        return _promote(version, "staging", reason, actor, [])
    model = registry.get_model(run.model)
    if model.require_audit:
        return PolicyOutcome(
            None,
            [],
            f"{version.version} stays a candidate: model {model.name} requires an audit "
            "approval, which a person gives",
        )
    production = registry.find_version(run.model, "production")
    if production is None:
        return PolicyOutcome(
            None,
            [],
            f"{version.version} stays a candidate: there is no production version to beat "
            "(the first production version is chosen by a person)",
        )
    margin_gate = _margin_gate(run, version, production, model.settings)
    if not margin_gate["passed"]:
        return PolicyOutcome(
            None, [margin_gate], f"{version.version} stays a candidate: {margin_gate['detail']}"
        )
    return _promote(
        version, "production", reason, actor, [margin_gate], revision=model.stage_revision
    )


def _margin_gate(
    run: RunInfo, version: VersionInfo, production: VersionInfo, settings: Mapping[str, Any]
) -> dict[str, Any]:
    metric = run.metric
    new, old = version.metrics.get(metric), production.metrics.get(metric)
    figures: dict[str, Any] = {
        "metric": metric,
        "candidate": new,
        "production": old,
        "production_version": production.version,
        "margin": run.margin,
    }
    if not isinstance(new, int | float) or not isinstance(old, int | float):
        missing = "the new version" if not isinstance(new, int | float) else "production"
        return {
            "name": "margin",
            "passed": False,
            "detail": f"{metric} was not measured for {missing}",
            "figures": figures,
        }
    higher = higher_is_better(metric, settings)
    gain = float(new) - float(old) if higher else float(old) - float(new)
    figures.update(gain=gain, higher_is_better=higher)
    passed = gain > 0 and gain >= run.margin
    detail = (
        f"{metric} {float(new):.4f} vs production {production.version} {float(old):.4f} "
        f"(improvement {gain:+.4f}, needs > 0 and ≥ {run.margin:g})"
    )
    return {"name": "margin", "passed": passed, "detail": detail, "figures": figures}


def _promote(
    version: VersionInfo,
    stage: str,
    reason: str,
    actor: Actor,
    extra_gates: list[dict[str, Any]],
    *,
    revision: int | None = None,
) -> PolicyOutcome:
    try:
        change = registry.promote(
            actor=actor,
            model=version.model,
            version=version.version,
            stage=stage,  # type: ignore[arg-type]
            reason=reason,
            expected_revision=revision,
            expected_stage="candidate",
        )
    except GateFailed as exc:
        return PolicyOutcome(
            None,
            extra_gates + [g.as_dict() for g in exc.gates],
            f"{version.version} stays a candidate: {exc}",
        )
    except CoreError as exc:  # a concurrent stage change, a vanished version
        return PolicyOutcome(None, extra_gates, f"{version.version} stays a candidate: {exc}")
    return PolicyOutcome(
        stage, extra_gates + list(change.gates), f"promoted {version.version} to {stage}"
    )
