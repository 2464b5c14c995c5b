"""The rollback rule: one place in core decides where production goes back to.

Roll back to the last production version that was not itself rolled back from (or to an
explicitly chosen earlier one); refuse when production is no longer what the caller saw; never
return to a version that was rolled back from, however often or concurrently it is asked.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.errors import BadInput, StageConflict
from tests.fixtures.registry import register_dummy

OPERATOR = Actor("olga", "operator")


def _three_in_production() -> None:
    for _ in range(3):
        register_dummy()
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        registry.promote(
            actor=SYSTEM, model="recsys", version=v, stage="production", reason="test promotion"
        )


def test_a_second_rollback_never_restores_the_version_rolled_back_from(backend) -> None:
    _three_in_production()
    first = registry.rollback(actor=OPERATOR, model="recsys", reason="bad lists")
    assert (first.displaced.version, first.event.version) == ("1.2.0", "1.1.0")
    plan = registry.rollback_plan("recsys")
    assert (plan.current, plan.target, plan.choices) == ("1.1.0", "1.0.0", ("1.0.0",))
    assert plan.rolled_back_from == ("1.2.0",)
    assert "skipped 1.2.0: rolled back from" in plan.why
    second = registry.rollback(actor=OPERATOR, model="recsys", reason="still bad")
    assert (second.displaced.version, second.event.version) == ("1.1.0", "1.0.0")
    plan = registry.rollback_plan("recsys")
    assert plan.target is None and plan.choices == ()
    assert "no earlier production version" in plan.why
    with pytest.raises(BadInput, match="no earlier production version"):
        registry.rollback(actor=OPERATOR, model="recsys", reason="again")
    assert registry.get_version("recsys").version == "1.0.0"


def test_rollback_states_what_it_rolls_back_from_and_refuses_a_stale_one(backend) -> None:
    _three_in_production()
    registry.rollback(actor=OPERATOR, model="recsys", reason="x", expected_from="1.2.0")
    # The same step again (a retried runbook) is refused and changes nothing.
    with pytest.raises(StageConflict, match="production of recsys is 1.1.0 now, not 1.2.0"):
        registry.rollback(actor=OPERATOR, model="recsys", reason="x", expected_from="1.2.0")
    assert registry.get_version("recsys").version == "1.1.0"
    assert len(registry.timeline("recsys")) == 3 + 3 + 2 + 2  # register, promote, displace


def test_an_explicit_earlier_target_is_allowed_but_never_a_rolled_back_one(backend) -> None:
    for _ in range(4):
        register_dummy()
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        registry.promote(
            actor=SYSTEM, model="recsys", version=v, stage="production", reason="test promotion"
        )
    registry.rollback(actor=OPERATOR, model="recsys", reason="x")  # 1.2.0 -> 1.1.0
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.3.0", stage="production", reason="test promotion"
    )
    plan = registry.rollback_plan("recsys")
    assert (plan.current, plan.target, plan.choices) == ("1.3.0", "1.1.0", ("1.1.0", "1.0.0"))
    for version, message in [
        ("1.2.0", "was rolled back from"),
        ("1.3.0", "is in production now"),
    ]:
        with pytest.raises(BadInput, match=message):
            registry.rollback(actor=OPERATOR, model="recsys", reason="x", to_version=version)
    change = registry.rollback(actor=OPERATOR, model="recsys", reason="x", to_version="1.0.0")
    assert change.event.version == "1.0.0"
    assert registry.rollback_plan("recsys").rolled_back_from == ("1.2.0", "1.3.0")


def test_concurrent_rollbacks_never_put_the_rolled_back_version_back(backend) -> None:
    _three_in_production()
    n = 6
    start = threading.Barrier(n)

    def attempt(expected: str | None) -> str:
        start.wait()
        try:
            change = registry.rollback(
                actor=OPERATOR, model="recsys", reason="race", expected_from=expected
            )
        except BadInput as exc:
            return f"refused: {exc}"
        return change.event.version

    with ThreadPoolExecutor(n) as pool:
        outcomes = list(pool.map(attempt, ["1.2.0"] * n))
    assert outcomes.count("1.1.0") == 1, outcomes
    assert all(
        o.startswith("refused: production of recsys is 1.1.0") for o in outcomes if o != "1.1.0"
    )
    assert registry.get_version("recsys").version == "1.1.0"

    # Without --from, each is a further step back; none ever returns to a rolled-back version.
    start = threading.Barrier(n)
    with ThreadPoolExecutor(n) as pool:
        outcomes = list(pool.map(attempt, [None] * n))
    assert outcomes.count("1.0.0") == 1, outcomes
    assert "1.2.0" not in outcomes and "1.1.0" not in outcomes
    assert registry.get_version("recsys").version == "1.0.0"
    versions = [e.version for e in registry.timeline("recsys") if e.action == "rollback"]
    assert versions == ["1.0.0", "1.1.0"]
