"""The Deploy page's Roll back tab shows core's rollback target and why, and acts on it.

The page computed its own target from the production history: after rolling 1.2.0 back to
1.0.0 it offered "1.0.0 → 1.2.0", undoing the rollback in one click.
"""

from __future__ import annotations

from core import registry
from core.accounts.auth import SYSTEM
from tests.dashboard.conftest import assert_clean, open_page, plain, sign_in
from tests.fixtures.dashboard import MODEL


def _texts(at) -> str:  # noqa: ANN001
    texts = [*at.markdown, *at.caption, *at.info, *at.error]
    return plain(" ".join(x.value for x in texts)).replace("**", "")


def _roll_back(at, reason: str):  # noqa: ANN001, ANN202
    at.text_input(key="deploy_rollback_reason").input(reason)
    return at.button(key="deploy_rollback").click().run()


def test_a_second_rollback_is_never_offered_back_to_the_rolled_back_version(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    assert f"from {populated.production} to {populated.previous_production}" in _texts(at)
    _roll_back(at, "users complain")
    assert_clean(at)
    assert registry.get_model(MODEL).production == populated.previous_production
    assert any(
        f"Rolled back {MODEL} from {populated.production} to {populated.previous_production}"
        in plain(s.value)
        for s in at.success
    )
    text = _texts(at)
    assert f"to {populated.production} in one step" not in text
    assert f"{populated.production} was rolled back from" in text
    assert not [b for b in at.button if b.key == "deploy_rollback"]
    assert registry.rollback_plan(MODEL).target is None


def test_the_target_and_why_come_from_core_and_an_earlier_one_can_be_chosen(populated) -> None:
    # Production history: first, second, newest; newest was rolled back; then a re-promotion.
    registry.promote(
        actor=SYSTEM,
        model=MODEL,
        version=populated.candidate,
        stage="production",
        reason="test promotion",
    )
    registry.rollback(actor=SYSTEM, model=MODEL, reason="bad")  # newest -> second
    registry.promote(
        actor=SYSTEM,
        model=MODEL,
        version=populated.staging,
        stage="production",
        reason="test promotion",
    )
    plan = registry.rollback_plan(MODEL)
    assert plan.target == populated.production
    at = sign_in("olga")
    open_page(at, "deploy")
    assert_clean(at)
    text = _texts(at)
    assert f"from {populated.staging} to {populated.production}" in text
    assert f"skipped {populated.candidate}: rolled back from" in text
    picker = at.selectbox(key=f"deploy_rollback_to_{MODEL}")
    assert picker.options == [
        f"{populated.production} (the rule's choice)",
        populated.previous_production,
    ]
    picker.select(populated.previous_production).run()
    assert f"to {populated.previous_production} in one step" in _texts(at)
    _roll_back(at, "go further back")
    assert_clean(at)
    assert registry.get_model(MODEL).production == populated.previous_production


def test_a_rollback_that_already_happened_elsewhere_is_refused(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    registry.rollback(actor=SYSTEM, model=MODEL, reason="someone else was faster")
    _roll_back(at, "me too")
    assert not at.exception
    assert any("changed since you loaded them" in plain(e.value) for e in at.error)
    assert registry.get_model(MODEL).production == populated.previous_production
    assert [e.action for e in registry.timeline(MODEL)].count("rollback") == 1


def test_separation_of_duties_shows_on_the_gates_and_audit_changes_are_logged(populated) -> None:
    from core.registry import audit

    at = sign_in("olga")
    open_page(at, "deploy")
    at.toggle(key=f"deploy_audit_{MODEL}").set_value(True)
    at.text_input(key=f"deploy_audit_reason_{MODEL}").input("regulator asks")
    at.button(key="deploy_save").click().run()
    assert_clean(at)
    assert registry.get_model(MODEL).require_audit
    [event] = registry.setting_events(MODEL)
    assert (event.actor, event.reason, event.new_value) == ("olga", "regulator asks", True)
    at.toggle(key=f"deploy_audit_{MODEL}").set_value(False)
    at.button(key="deploy_save").click().run()
    assert any("give a reason" in plain(e.value) for e in at.error)
    assert registry.get_model(MODEL).require_audit

    audit.record_verdict(
        actor=registry_actor("olga"), model=MODEL, version=populated.candidate, verdict="approve"
    )
    at.selectbox(key=f"deploy_version_{MODEL}").select(populated.candidate)
    at.radio(key="deploy_target").set_value("production")
    at.text_input(key="deploy_reason").input("approved")
    at.button(key="deploy_review").click().run()
    assert any("separation of duties" in plain(e.value) for e in at.error)
    assert at.button(key="deploy_confirm").disabled


def registry_actor(name: str):  # noqa: ANN201
    from core.accounts import auth

    return auth.actor_for(name)


def test_a_promotion_needs_a_reason_before_its_gates_are_shown(populated) -> None:
    """The reason is asked for when the gates are reviewed, by core's rule, not after they all
    passed: a green board and then a refusal was the old way."""
    at = sign_in("olga")
    open_page(at, "deploy")
    at.selectbox(key=f"deploy_version_{MODEL}").select(populated.candidate)
    at.radio(key="deploy_target").set_value("staging")
    at.text_input(key="deploy_reason").input("   ")
    at.button(key="deploy_review").click().run()
    assert any("give a reason for the promotion" in plain(e.value) for e in at.error)
    assert not [b for b in at.button if b.key == "deploy_confirm"]
    assert registry.get_model(MODEL).staging == populated.staging
