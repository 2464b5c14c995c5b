"""Audit verdicts: a domain expert's approval or rejection of a version.

A model can require an approving verdict before promotion to production (see
:mod:`core.registry.gates`). Verdicts are never edited; a new verdict supersedes the earlier ones.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select

from core.accounts.auth import Actor, require
from core.db import transaction
from core.db.tables import AuditVerdictRow, ModelRow, VersionRow
from core.errors import BadInput, NotFound
from core.registry.entities import AuditVerdict

Verdict = Literal["approve", "reject"]
MAX_COMMENT = 4000


def _version(s: Any, model: str, version: str) -> VersionRow:
    row = s.scalar(
        select(VersionRow)
        .join(ModelRow)
        .where(ModelRow.name == model, VersionRow.version == version)
    )
    if row is None:
        raise NotFound(f"model {model!r} has no version {version!r}")
    return row


def record_verdict(
    *,
    actor: Actor,
    model: str,
    version: str,
    verdict: Verdict,
    comment: str = "",
    sample: dict[str, Any] | None = None,
) -> AuditVerdict:
    require(actor, "audit", "record audit verdicts")
    if verdict not in ("approve", "reject"):
        raise BadInput(f"verdict must be 'approve' or 'reject', not {verdict!r}")
    comment = (comment or "").strip()
    if verdict == "reject" and not comment:
        raise BadInput("a rejection needs a comment saying what is wrong")
    if len(comment) > MAX_COMMENT:
        raise BadInput(f"comment is {len(comment)} characters; the limit is {MAX_COMMENT}")
    with transaction() as s:
        v = _version(s, model, version)
        row = AuditVerdictRow(
            version_id=v.id,
            auditor=actor.username,
            verdict=verdict,
            comment=comment,
            sample=dict(sample or {}),
        )
        s.add(row)
        s.flush()
        return AuditVerdict.of(row, model=model, version=version, sample=dict(row.sample))


def verdicts(model: str, version: str) -> list[AuditVerdict]:
    """Newest first."""
    with transaction(write=False) as s:
        v = _version(s, model, version)
        rows = s.scalars(
            select(AuditVerdictRow)
            .where(AuditVerdictRow.version_id == v.id)
            .order_by(AuditVerdictRow.id.desc())
        )
        return [
            AuditVerdict.of(r, model=model, version=version, sample=dict(r.sample)) for r in rows
        ]
