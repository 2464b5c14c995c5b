"""The pages that change what serves, under AppTest: Deploy (review, promote, roll back,
settings, timeline) and Audit (the sample and the verdict the gate reads)."""

from __future__ import annotations

import datetime as dt

import pytest

from core import registry
from core.accounts.auth import SYSTEM
from tests.dashboard.conftest import (
    PAGES,
    assert_clean,
    open_page,
    plain,
    sign_in,
    submit,
    table,
)
from tests.fixtures.dashboard import MODEL, populate

# ------------------------------------------------------------------------ deploy


def _review(at, version: str, stage: str, reason: str = "test promotion") -> None:
    at.selectbox(key=f"deploy_version_{MODEL}").select(version)
    at.radio(key="deploy_target").set_value(stage)
    at.text_input(key="deploy_reason").input(reason)
    at.button(key="deploy_review").click().run()


@pytest.fixture
def populated_any(dash_backend, tmp_path):
    """The populated registry on SQLite and on PostgreSQL."""
    return populate(tmp_path)


def test_promote_then_roll_back_through_the_page(populated_any) -> None:
    populated = populated_any
    at = sign_in("olga")
    open_page(at, "deploy")
    assert_clean(at)
    _review(at, populated.candidate, "production", "best NDCG so far")
    assert_clean(at)
    assert registry.get_model(MODEL).production == populated.production, "not before confirming"
    gates = " ".join(s.value for s in at.success)
    assert "integrity" in gates and "metrics" in gates and "audit" in gates
    figures = table(at, "metric", "candidate", "production")
    assert {"ndcg@5", "rmse"} <= set(figures["metric"])
    assert {"candidate", "production", "delta", "tolerance"} <= set(figures.columns)

    at.button(key="deploy_confirm").click().run()
    assert_clean(at)
    assert registry.get_model(MODEL).production == populated.candidate
    assert any(f"{populated.candidate} is now in production" in plain(s.value) for s in at.success)
    last = registry.timeline(MODEL)[0]
    assert (last.action, last.actor, last.reason) == ("promote", "olga", "best NDCG so far")
    # The page shows the new state at once: the board's production column.
    board = plain(" ".join(m.value for m in at.markdown))
    assert f"**{populated.candidate}** :green-badge[production]" in board

    at.text_input(key="deploy_rollback_reason").input("users complain about the lists")
    at.button(key="deploy_rollback").click().run()
    assert_clean(at)
    assert registry.get_model(MODEL).production == populated.production
    last = registry.timeline(MODEL)[0]
    assert (last.action, last.actor, last.reason) == (
        "rollback",
        "olga",
        "users complain about the lists",
    )
    assert any("Rolled" in plain(s.value) for s in at.success)
    # The audit timeline on the page shows both changes with their author.
    events = table(at, "when", "action", "version", "by")
    changes = events[events["action"].isin(["promote", "rollback"])].head(2)
    assert list(zip(changes["action"], changes["version"], changes["by"], strict=True)) == [
        ("rollback", populated.production, "olga"),
        ("promote", populated.candidate, "olga"),
    ]
    # Every other page shows the new state too.
    at.switch_page(PAGES["overview"]).run()
    models = table(at, "model", "production", "newest candidate").set_index("model")
    assert models.loc[MODEL, "production"] == populated.production


def test_cancel_leaves_everything_as_it_was(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    _review(at, populated.candidate, "staging")
    at.button(key="deploy_cancel").click().run()
    assert_clean(at)
    assert registry.get_model(MODEL).staging == populated.staging
    assert at.button(key="deploy_review")


def test_promote_to_staging_archives_the_previous_staging_version(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    _review(at, populated.candidate, "staging", "next canary")
    at.button(key="deploy_confirm").click().run()
    assert_clean(at)
    assert registry.get_model(MODEL).staging == populated.candidate
    assert registry.get_version(MODEL, populated.staging).stage == "archived"
    assert any(f"{populated.staging} was archived" in plain(s.value) for s in at.success)


def test_failing_gate_is_shown_with_figures_and_cannot_be_confirmed(populated) -> None:
    registry.update_model(actor=SYSTEM, name=MODEL, require_audit=True)
    at = sign_in("olga")
    open_page(at, "deploy")
    _review(at, populated.candidate, "production")
    assert not at.exception
    assert any("audit" in e.value and "approval is required" in plain(e.value) for e in at.error)
    assert at.button(key="deploy_confirm").disabled
    assert registry.get_model(MODEL).production == populated.production


def test_stale_page_is_told_why_and_nothing_changes(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    _review(at, populated.candidate, "production")
    # Someone else promotes meanwhile.
    registry.promote(
        actor=SYSTEM,
        model=MODEL,
        version=populated.staging,
        stage="production",
        reason="test promotion",
    )
    at.button(key="deploy_confirm").click().run()
    assert not at.exception
    assert any("changed since you loaded them" in plain(e.value) for e in at.error)
    assert registry.get_model(MODEL).production == populated.staging


def test_rollback_needs_a_reason(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    assert any(populated.previous_production in plain(m.value) for m in at.markdown)
    at.button(key="deploy_rollback").click().run()
    assert any("give a reason" in plain(e.value) for e in at.error)
    assert registry.get_model(MODEL).production == populated.production


def test_canary_share_and_audit_requirement_are_saved(populated) -> None:
    at = sign_in("olga")
    open_page(at, "deploy")
    at.slider(key=f"deploy_canary_{MODEL}").set_value(25)
    at.toggle(key=f"deploy_audit_{MODEL}").set_value(True)
    at.button(key="deploy_save").click().run()
    assert_clean(at)
    info = registry.get_model(MODEL)
    assert info.canary_share == pytest.approx(0.25) and info.require_audit


def test_timeline_answers_what_was_in_production_when(populated) -> None:
    at = sign_in("victor")
    open_page(at, "deploy")
    assert_clean(at)
    assert at.get("plotly_chart"), "production spans are charted"
    events = table(at, "when", "action", "version", "by")
    assert {"promote", "register", "displace"} <= set(events["action"])

    today = dt.datetime.now(dt.UTC).date()
    at.date_input(key="deploy_at_day").set_value(today + dt.timedelta(days=1))
    at.time_input(key="deploy_at_time").set_value(dt.time(0, 0)).run()
    assert any(f"**{populated.production}**" in plain(m.value) for m in at.markdown)
    at.date_input(key="deploy_at_day").set_value(today - dt.timedelta(days=1)).run()
    assert any(plain(m.value).endswith(": nothing") for m in at.markdown)


# ------------------------------------------------------------------------ audit


def test_audit_sample_warnings_and_a_verdict_the_gate_accepts(populated) -> None:
    from core.registry import audit

    registry.update_model(actor=SYSTEM, name=MODEL, require_audit=True)
    at = sign_in("ana")
    open_page(at, "audit")
    assert_clean(at)
    at.selectbox(key=f"audit_version_{MODEL}").select(populated.candidate).run()
    assert_clean(at)
    segments = table(at, "segment", "liked-category share")
    assert len(segments) >= 5, "users of every taste segment"
    assert at.warning or at.success, "the automatic checks always say something"
    users = table(at, "user", "segment", "top 3")
    assert len(users) == segments["users"].sum()
    assert len(table(at, "rank", "place", "liked")) > 0

    at.radio(key="audit_verdict").set_value("reject")
    submit(at, "audit_form")
    assert any("needs a comment" in plain(e.value) for e in at.error)
    assert not audit.verdicts(MODEL, populated.candidate)

    at.radio(key="audit_verdict").set_value("approve")
    at.text_area(key="audit_comment").input("lists look right for every segment")
    submit(at, "audit_form")
    assert not at.exception
    verdicts = audit.verdicts(MODEL, populated.candidate)
    assert [(v.auditor, v.verdict) for v in verdicts] == [("ana", "approve")]
    assert verdicts[0].sample["users"] == len(users), "what the auditor saw is kept"
    assert any("Latest verdict: **approve**" in s.value for s in at.success)
    gates = registry.preview_gates(MODEL, populated.candidate, "production")
    assert next(g for g in gates if g["name"] == "audit")["passed"]


def test_audit_flags_catch_all_categories_shows_types_and_has_no_default_verdict(
    populated,
) -> None:
    from core.registry import audit

    at = sign_in("ana")
    open_page(at, "audit")
    assert_clean(at)
    config = [plain(w.value) for w in at.warning if "Model configuration" in w.value]
    assert config, "categories mapped to 'establishment' are a finding of the configuration"
    assert "music halls" in config[0] and "establishment" in config[0]
    places = table(at, "rank", "place", "category", "its types")
    assert places["its types"].str.len().min() > 0
    assert "establishment" not in " ".join(places["its types"])

    # No verdict is chosen for the auditor; submitting without one records nothing.
    assert at.radio(key="audit_verdict").value is None
    at.text_area(key="audit_comment").input("looked at every segment")
    submit(at, "audit_form")
    assert any("choose Approve or Reject" in plain(e.value) for e in at.error)
    assert not audit.verdicts(MODEL, at.selectbox(key=f"audit_version_{MODEL}").value)
