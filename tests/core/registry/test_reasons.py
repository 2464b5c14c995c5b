"""Every change of what serves states why: a promotion's reason is required as a rollback's
is, for people and automation alike, in core, so every interface refuses the same way."""

from __future__ import annotations

import pytest

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.errors import BadInput, NotFound
from tests.fixtures.registry import register_dummy

OPERATOR = Actor("olga", "operator")


@pytest.mark.parametrize("actor", [OPERATOR, SYSTEM], ids=["person", "automation"])
@pytest.mark.parametrize("reason", ["", "   \n\t"])
def test_a_promotion_without_a_reason_is_refused_and_changes_nothing(
    backend, actor: Actor, reason: str
) -> None:
    register_dummy()
    before = registry.timeline("recsys")
    with pytest.raises(BadInput, match="give a reason for the promotion; it goes into the audit"):
        registry.promote(
            actor=actor, model="recsys", version="1.0.0", stage="production", reason=reason
        )
    assert registry.get_version("recsys", "1.0.0").stage == "candidate"
    assert registry.timeline("recsys") == before


def test_a_rollback_without_a_reason_is_refused_and_changes_nothing(backend) -> None:
    for _ in range(2):
        register_dummy()
    for v in ("1.0.0", "1.1.0"):
        registry.promote(actor=SYSTEM, model="recsys", version=v, stage="production", reason="x")
    with pytest.raises(BadInput, match="give a reason for the rollback; it goes into the audit"):
        registry.rollback(actor=OPERATOR, model="recsys", reason=" ")
    assert registry.get_model("recsys").production == "1.1.0"


def test_the_reason_is_kept_without_surrounding_blanks(backend) -> None:
    register_dummy()
    change = registry.promote(
        actor=OPERATOR, model="recsys", version="1.0.0", stage="staging", reason="  canary\n"
    )
    assert change.event.reason == "canary"


def test_an_unknown_model_is_named_before_a_missing_reason(backend) -> None:
    with pytest.raises(NotFound, match="nope"):
        registry.promote(actor=OPERATOR, model="nope", version="1.0.0", stage="staging")
    with pytest.raises(NotFound, match="nope"):
        registry.rollback(actor=OPERATOR, model="nope")
