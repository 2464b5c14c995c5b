"""Audit controls: separation of duties, an audited audit requirement, append-only verdicts."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.db import transaction
from core.errors import BadInput, GateFailed, PermissionDenied
from core.registry import audit
from tests.fixtures.registry import register_dummy

OLGA = Actor("olga", "operator")
OTTO = Actor("otto", "operator")


def test_whoever_approved_a_version_cannot_promote_it_past_the_audit_gate(backend) -> None:
    register_dummy()
    registry.set_audit_requirement(actor=SYSTEM, model="recsys", required=True, reason="policy")
    audit.record_verdict(actor=OLGA, model="recsys", version="1.0.0", verdict="approve")
    gates = registry.preview_gates("recsys", "1.0.0", "production", actor=OLGA)
    assert not next(g for g in gates if g["name"] == "audit")["passed"]
    with pytest.raises(GateFailed, match="separation of duties"):
        registry.promote(
            actor=OLGA, model="recsys", version="1.0.0", stage="production", reason="test promotion"
        )
    assert registry.get_version("recsys", "1.0.0").stage == "candidate"
    change = registry.promote(
        actor=OTTO, model="recsys", version="1.0.0", stage="production", reason="test promotion"
    )
    audit_gate = next(g for g in change.gates if g["name"] == "audit")
    assert audit_gate["passed"] and "approved by olga" in audit_gate["detail"]


def test_the_audit_requirement_changes_only_with_a_trace(backend) -> None:
    register_dummy()
    for role in ("viewer", "auditor"):
        with pytest.raises(PermissionDenied):
            registry.set_audit_requirement(
                actor=Actor("x", role), model="recsys", required=True, reason="r"
            )
    registry.set_audit_requirement(actor=OLGA, model="recsys", required=True, reason="regulator")
    assert registry.get_model("recsys").require_audit
    with pytest.raises(BadInput, match="give a reason"):
        registry.set_audit_requirement(actor=OLGA, model="recsys", required=False, reason="  ")
    with pytest.raises(BadInput, match="give a reason"):
        registry.update_model(actor=OLGA, name="recsys", require_audit=False)
    assert registry.get_model("recsys").require_audit
    registry.set_audit_requirement(actor=OTTO, model="recsys", required=False, reason="pilot over")
    events = registry.setting_events("recsys")
    assert [(e.actor, e.old_value, e.new_value, e.reason, e.stage) for e in events] == [
        ("otto", True, False, "pilot over", "production"),
        ("olga", False, True, "regulator", "production"),
    ]
    for stmt in (
        "UPDATE stage_setting_events SET reason = 'nothing to see'",
        "DELETE FROM stage_setting_events",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction() as s:
            s.execute(text(stmt))
    assert len(registry.setting_events("recsys")) == 2


def test_audit_verdicts_are_append_only_in_the_database(backend) -> None:
    register_dummy()
    audit.record_verdict(
        actor=Actor("ana", "auditor"),
        model="recsys",
        version="1.0.0",
        verdict="reject",
        comment="lists ignore the user",
    )
    for stmt in (
        "UPDATE audit_verdicts SET verdict = 'approve', comment = ''",
        "DELETE FROM audit_verdicts",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction() as s:
            s.execute(text(stmt))
    [kept] = audit.verdicts("recsys", "1.0.0")
    assert (kept.verdict, kept.comment) == ("reject", "lists ignore the user")
