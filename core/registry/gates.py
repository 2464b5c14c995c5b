"""Promotion gates: what a version must pass before it takes a stage.

* ``integrity``: every artifact file matches the SHA-256 the registry recorded.
* ``metrics``: for production, each gated metric is no worse than the current production
  version's by more than its tolerance (figures shown either way).
* ``health``: for production, when the model sets ``settings["health_gates"]`` (a metric of
  :mod:`core.metrics.health` → the relative regression tolerated, e.g. ``{"coverage": 0.2}``), the
  version's label-free recommendation health on its canary traffic is no worse than
  production's on the same windows of the last week (figures shown either way).
* ``audit``: when the model requires it, the version's latest audit verdict is an approval,
  given by someone other than the person promoting it (separation of duties: whoever approved
  a version cannot also be the one who promotes it past this gate).

Thresholds live in the model's settings under ``"gates"`` so each model can be stricter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.auth import Actor
from core.db.tables import AuditVerdictRow, ModelRow, VersionRow
from core.errors import ArtifactIntegrityError, GateResult
from core.metrics import direction
from core.registry import artifacts

# metric -> (direction, tolerated regression in absolute units)
DEFAULT_METRIC_GATES: dict[str, dict[str, Any]] = {
    "ndcg@5": {"higher_is_better": True, "tolerance": 0.0},
    "rmse": {"higher_is_better": False, "tolerance": 0.02},
}


def metric_gates(model: ModelRow) -> dict[str, dict[str, Any]]:
    configured = (model.settings or {}).get("gates")
    return dict(configured) if isinstance(configured, dict) else dict(DEFAULT_METRIC_GATES)


def integrity_gate(version: VersionRow) -> GateResult:
    try:
        artifacts.verify(version.artifact_dir, version.files)
    except ArtifactIntegrityError as exc:
        return GateResult("integrity", False, str(exc), {"files": len(version.files)})
    return GateResult(
        "integrity",
        True,
        f"all {len(version.files)} files match their SHA-256",
        {"files": len(version.files)},
    )


def metrics_gate(model: ModelRow, version: VersionRow, production: VersionRow | None) -> GateResult:
    if production is None:
        return GateResult("metrics", True, "no production version to compare against")
    if production.id == version.id:
        return GateResult("metrics", True, "this version is production")
    figures: dict[str, Any] = {}
    failures = []
    for metric, rule in metric_gates(model).items():
        new, old = version.metrics.get(metric), production.metrics.get(metric)
        if old is None:
            figures[metric] = {"candidate": new, "production": None, "passed": True}
            continue
        if new is None:
            figures[metric] = {"candidate": None, "production": old, "passed": False}
            failures.append(f"{metric} not measured (production {old:.4f})")
            continue
        higher = bool(rule.get("higher_is_better", direction.higher_is_better(metric)))
        tol = float(rule.get("tolerance", 0.0))
        delta = float(new) - float(old)
        ok = delta >= -tol if higher else delta <= tol
        figures[metric] = {
            "candidate": new,
            "production": old,
            "delta": delta,
            "tolerance": tol,
            "higher_is_better": higher,
            "passed": ok,
        }
        if not ok:
            failures.append(
                f"{metric} {new:.4f} vs production {old:.4f} ({delta:+.4f}, tolerance {tol})"
            )
    if failures:
        return GateResult(
            "metrics",
            False,
            f"worse than production {production.version}: " + "; ".join(failures),
            figures,
        )
    return GateResult(
        "metrics", True, f"no gated metric worse than production {production.version}", figures
    )


def audit_gate(
    session: Session, model: ModelRow, version: VersionRow, actor: Actor | None = None
) -> GateResult:
    """The latest verdict must approve, and not be the promoting ``actor``'s own."""
    latest = session.scalar(
        select(AuditVerdictRow)
        .where(AuditVerdictRow.version_id == version.id)
        .order_by(AuditVerdictRow.id.desc())
        .limit(1)
    )
    figures = {
        "required": model.require_audit,
        "verdict": None if latest is None else latest.verdict,
        "auditor": None if latest is None else latest.auditor,
    }
    if not model.require_audit:
        return GateResult("audit", True, "this model does not require an audit verdict", figures)
    if latest is None:
        return GateResult(
            "audit", False, "no audit verdict recorded; an approval is required", figures
        )
    if latest.verdict != "approve":
        return GateResult(
            "audit",
            False,
            f"latest verdict by {latest.auditor} is a rejection: {latest.comment or 'no comment'}",
            figures,
        )
    if actor is not None and actor.username == latest.auditor:
        return GateResult(
            "audit",
            False,
            f"approved by {latest.auditor}, who may not also promote it past the audit gate "
            "(separation of duties); another operator must promote it",
            {**figures, "promoter": actor.username},
        )
    return GateResult("audit", True, f"approved by {latest.auditor}", figures)


HEALTH_DAYS = 7


def health_gate(
    session: Session, model: ModelRow, version: VersionRow, production: VersionRow | None
) -> GateResult | None:
    """The canary's recommendation health against production's, when the model asks for it."""
    configured = (model.settings or {}).get("health_gates")
    if not configured:
        return None
    if production is None or production.id == version.id:
        return GateResult("health", True, "no other production version to compare against")
    import datetime as dt

    from core.db.tables import MonitorResultRow
    from core.metrics.health import METRICS

    unknown = sorted(set(configured) - set(METRICS))
    if unknown:
        return GateResult("health", False, f"unknown health metrics in the gate: {unknown}")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=HEALTH_DAYS)
    rows = session.execute(
        select(
            MonitorResultRow.version,
            MonitorResultRow.variant,
            MonitorResultRow.window_start,
            MonitorResultRow.figures,
        ).where(
            MonitorResultRow.model == model.name,
            MonitorResultRow.kind == "health",
            MonitorResultRow.status == "ok",
            MonitorResultRow.provisional.is_(False),
            MonitorResultRow.window_start >= since,
            MonitorResultRow.version.in_([version.version, production.version]),
        )
    ).all()
    canary = {w: f for v, var, w, f in rows if v == version.version and var == "canary"}
    served = {w: f for v, var, w, f in rows if v == production.version and var == "production"}
    shared = sorted(set(canary) & set(served))
    if not shared:
        return GateResult(
            "health",
            False,
            f"no window of the last {HEALTH_DAYS} days holds health figures of "
            f"{version.version} as a canary beside production {production.version}: serve it "
            "as a canary first",
        )
    figures: dict[str, Any] = {"windows": len(shared)}
    failures = []
    for metric, tolerance in configured.items():
        higher = METRICS[metric][1]
        new = [canary[w][metric] for w in shared if canary[w].get(metric) is not None]
        old = [served[w][metric] for w in shared if served[w].get(metric) is not None]
        if not new or not old:
            figures[metric] = {"candidate": None, "production": None, "passed": True}
            continue
        a, b = sum(new) / len(new), sum(old) / len(old)
        tol = float(tolerance)
        ok = a >= b * (1 - tol) if higher else a <= b * (1 + tol)
        figures[metric] = {
            "candidate": a,
            "production": b,
            "tolerance": tol,
            "higher_is_better": higher,
            "passed": ok,
        }
        if not ok:
            failures.append(f"{metric} {a:.3f} vs production {b:.3f} (tolerance {tol:.0%})")
    if failures:
        return GateResult(
            "health",
            False,
            "recommendation health worse than production: " + "; ".join(failures),
            figures,
        )
    return GateResult(
        "health",
        True,
        f"recommendation health as good as production's on {len(shared)} windows",
        figures,
    )


def evaluate(
    session: Session,
    model: ModelRow,
    version: VersionRow,
    target: str,
    production: VersionRow | None,
    actor: Actor | None = None,
) -> list[GateResult]:
    """Every gate ``version`` faces on its way to ``target``, promoted by ``actor``."""
    results = [integrity_gate(version)]
    if target == "production":
        results.append(metrics_gate(model, version, production))
        health = health_gate(session, model, version, production)
        if health is not None:
            results.append(health)
        results.append(audit_gate(session, model, version, actor))
    return results
