"""Promotion gates: what a version must pass before it takes a stage.

* ``integrity``: every artifact file matches the SHA-256 the registry recorded.
* ``metrics``: for production, each gated metric is no worse than the current production
  version's by more than its tolerance (figures shown either way).
* ``audit``: when the model requires it, the version's latest audit verdict is an approval,
  given by someone other than the person promoting it (separation of duties: whoever approved
  a version cannot also be the one who promotes it past this gate).

Thresholds live in the model's settings under ``"gates"`` so each model can be stricter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import artifacts
from core.auth import Actor
from core.db import AuditVerdictRow, ModelRow, VersionRow
from core.errors import ArtifactIntegrityError, GateResult

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
        higher = bool(rule.get("higher_is_better", True))
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
        results.append(audit_gate(session, model, version, actor))
    return results
