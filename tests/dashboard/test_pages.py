"""The dashboard's pages under AppTest: sign-in, roles, and every page empty and populated."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

import pytest

from core import registry
from core.accounts import auth
from core.accounts.auth import SYSTEM
from tests.conftest import PROJECT_ROOT
from tests.dashboard.builders import BASELINE, BASELINE_DESCRIPTION, MODEL, populate
from tests.dashboard.conftest import (
    PAGES,
    assert_clean,
    new_app,
    open_page,
    plain,
    sign_in,
    submit,
    table,
)

DASHBOARD = PROJECT_ROOT / "dashboard"
PRODUCT_PAGES = ["overview", "models", "compare", "preview", "audit", "deploy", "account"]


def _sidebar_text(at) -> str:
    return " ".join(m.value for m in [*at.sidebar.markdown, *at.sidebar.caption])


# ------------------------------------------------------------------------ sign-in


def test_good_password_signs_in_and_shows_who_and_role(dash_registry) -> None:
    at = sign_in("olga")
    assert_clean(at)
    text = _sidebar_text(at)
    assert "olga" in text and "operator" in text
    assert "An operator can also promote" in text
    assert at.title[0].value == "Overview"


def test_bad_password_is_refused_and_stays_on_sign_in(dash_registry) -> None:
    at = sign_in("olga", "not-the-password")
    assert not at.exception
    assert any("wrong user name or password" in plain(e.value) for e in at.error)
    assert at.title[0].value == "Planwise Monitor"
    assert "olga" not in _sidebar_text(at)
    # The password field is emptied after a failed attempt.
    assert at.text_input(key="sign_in_password").value == ""


def test_unknown_user_gets_the_same_message(dash_registry) -> None:
    at = sign_in("nobody", "whatever-password")
    assert any("wrong user name or password" in plain(e.value) for e in at.error)


def test_sign_out_returns_to_sign_in(dash_registry) -> None:
    at = sign_in("victor")
    at.button(key="app_sign_out").click().run()
    assert at.title[0].value == "Planwise Monitor"
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGES["overview"])


def test_an_idle_session_is_signed_out_with_a_notice(
    dash_registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from core.config import reset_settings
    from core.db import transaction, utcnow
    from core.db.tables import SessionRow

    def last_seen(minutes_ago: float) -> None:
        with transaction() as s:
            s.execute(
                update(SessionRow).values(last_seen_at=utcnow() - dt.timedelta(minutes=minutes_ago))
            )

    monkeypatch.setenv("SESSION_IDLE_MINUTES", "30")
    reset_settings()
    at = sign_in("olga")
    last_seen(29)  # still active
    at.run()
    assert at.title[0].value == "Overview"
    last_seen(31)
    at.run()
    assert at.title[0].value == "Planwise Monitor"
    assert any("signed out after 30 minutes without activity" in i.value for i in at.info)
    assert "olga" not in _sidebar_text(at)
    at.run()  # the notice is shown once
    assert not any("without activity" in i.value for i in at.info)


def test_sessions_end_on_the_server_at_the_next_click(dash_registry) -> None:
    """Sign-out in one tab, a disabled account or a new password: every other tab of the
    account is signed out at its next click, with the reason."""
    from sqlalchemy import update

    from core.accounts import sessions
    from core.db import transaction
    from core.db.tables import UserRow

    first, second = sign_in("olga"), sign_in("olga")
    first.button(key="app_sign_out").click().run()
    assert first.title[0].value == "Planwise Monitor"
    second.run()
    assert second.title[0].value == "Planwise Monitor"
    assert "olga" not in _sidebar_text(second)

    tab = sign_in("ana")
    auth.change_password(actor=SYSTEM, username="ana", new_password="a-new-password-22")
    tab.run()
    assert tab.title[0].value == "Planwise Monitor"
    assert any("password was changed" in i.value for i in tab.info)

    tab = sign_in("victor")
    with transaction() as s:
        s.execute(update(UserRow).where(UserRow.username == "victor").values(disabled=True))
    tab.run()
    assert any("disabled" in i.value for i in tab.info)

    tab = sign_in("admin")
    assert sessions.end_sessions("admin") == 1
    tab.run()
    assert tab.title[0].value == "Planwise Monitor"


def test_first_start_admin_must_change_one_time_password(
    sqlite_backend, caplog: pytest.LogCaptureFixture
) -> None:
    """No account at all: the dashboard creates admin, logs its password, forces a change."""
    with caplog.at_level(logging.WARNING, logger="dashboard.cache"):
        at = new_app().run()
    found = re.search(r"one-time password: (\S+)", caplog.text)
    assert found, "the first start must print the admin's one-time password"
    one_time = found.group(1)
    assert one_time not in str(at.main), "the password is never shown in a browser"

    at = sign_in("admin", one_time)
    assert_clean(at)
    assert at.title[0].value == "Change password"
    assert any("one-time password" in plain(w.value) for w in at.warning)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGES["deploy"])  # the other pages are not offered yet

    at.text_input(key="account_old").input(one_time)
    at.text_input(key="account_new").input("a-brand-new-password")
    at.text_input(key="account_repeat").input("a-brand-new-password")
    submit(at, "account_form")
    assert_clean(at)
    assert any("Password changed" in plain(s.value) for s in at.success)
    assert not auth.get_user("admin").must_change_password
    at.switch_page(PAGES["deploy"]).run()
    assert_clean(at)
    assert at.title[0].value == "Deploy"


def test_password_change_with_mismatch_is_refused(dash_registry) -> None:
    at = sign_in("victor")
    at.switch_page(PAGES["account"]).run()
    at.text_input(key="account_old").input("viewer-password-1")
    at.text_input(key="account_new").input("something-long-1")
    at.text_input(key="account_repeat").input("something-long-2")
    submit(at, "account_form")
    assert any("differ" in plain(e.value) for e in at.error)


def test_admin_creates_an_account_that_must_change_its_password(dash_registry) -> None:
    at = sign_in("admin")
    at.switch_page(PAGES["users"]).run()
    at.text_input(key="users_new_name").input("rosa")
    at.selectbox(key="users_new_role").select("auditor")
    at.text_input(key="users_new_password").input("one-time-password-1")
    submit(at, "users_create_form")
    assert_clean(at)
    info = auth.get_user("rosa")
    assert (info.role, info.must_change_password) == ("auditor", True)


# ------------------------------------------------------------------------ every page renders


@pytest.mark.parametrize("page", PRODUCT_PAGES + ["users"])
def test_every_page_renders_on_an_empty_registry(dash_registry, page: str) -> None:
    at = sign_in("admin")
    at.switch_page(PAGES[page]).run()
    assert_clean(at)
    if page not in ("account", "users"):
        assert at.info, f"{page} must explain what will appear"


@pytest.mark.parametrize("page", PRODUCT_PAGES + ["users"])
def test_every_page_renders_on_a_populated_registry(populated, page: str) -> None:
    at = sign_in("admin")
    open_page(at, page)
    assert_clean(at)
    if page in ("models", "compare", "preview", "audit", "deploy"):
        text = str(at.main)
        assert MODEL in text


def test_overview_shows_each_model_and_recent_changes(populated) -> None:
    at = sign_in("victor")
    assert_clean(at)
    models = table(at, "model", "production", "newest candidate").set_index("model")
    assert models.loc[MODEL, "production"] == populated.production
    assert models.loc[MODEL, "staging"] == f"{populated.staging} (canary 10%)"
    assert models.loc[MODEL, "newest candidate"] == populated.candidate
    assert models.loc[BASELINE, "production"] == populated.baseline
    events = table(at, "when", "model", "reason")
    assert events.iloc[0]["reason"] == "the baseline"
    # No traffic and no drift result yet: the health section says how they come.
    assert "python -m core simulate NAME" in " ".join(i.value for i in at.info)
    assert not [d for d in at.dataframe if "open alerts" in d.value.columns]


# ------------------------------------------------------------------------ roles


def test_viewer_is_offered_no_action(populated) -> None:
    at = sign_in("victor")
    open_page(at, "deploy")
    assert_clean(at)
    keys = {b.key for b in at.button}
    assert not keys & {"deploy_review", "deploy_rollback", "deploy_save"}
    assert any("viewer" in plain(i.value) for i in at.info)
    open_page(at, "audit")
    assert_clean(at)
    assert not at.text_area, "viewers get no verdict form"
    with pytest.raises(ValueError):
        at.switch_page(PAGES["users"])  # admins only


def test_auditor_may_record_verdicts_but_not_deploy(populated) -> None:
    at = sign_in("ana")
    open_page(at, "audit")
    assert at.text_area(key="audit_comment")
    open_page(at, "deploy")
    assert not {b.key for b in at.button} & {"deploy_review", "deploy_rollback"}


def test_a_role_taken_away_meanwhile_is_refused_by_core(populated) -> None:
    """The page offered the action; the click comes after the role changed: core refuses."""
    at = sign_in("olga")
    open_page(at, "deploy")
    at.text_input(key="deploy_rollback_reason").input("bad lists")
    auth.set_role(actor=SYSTEM, username="olga", role="viewer")
    at.button(key="deploy_rollback").click().run()
    assert not at.exception
    assert any("may not roll back" in plain(e.value) for e in at.error)
    assert registry.get_model(MODEL).production == populated.production
    # And the page no longer offers it.
    assert not [b for b in at.button if b.key == "deploy_rollback"]


def test_user_text_is_never_rendered_as_html(populated) -> None:
    for path in DASHBOARD.rglob("*.py"):
        source = path.read_text()
        assert "unsafe_allow_html" not in source, path
        assert "st.html" not in source, path
    at = sign_in("admin")
    open_page(at, "models", model=None)  # every model: the detail follows the filters
    at.selectbox(key="models_open").select(f"{BASELINE}@{populated.baseline}").run()
    assert_clean(at)
    assert any(t.value == BASELINE_DESCRIPTION for t in at.text), "shown verbatim, as text"
    for element in [*at.markdown, *at.caption]:
        assert not element.proto.allow_html
        assert "<b>" not in element.value


# ------------------------------------------------------------------------ models


def test_models_table_paginates_searches_and_opens_a_version(dash_registry, tmp_path) -> None:
    populate(tmp_path, extra_versions=30)
    at = sign_in("victor")
    at.switch_page(PAGES["models"]).run()
    at.selectbox(key="models_page_size").select(25).run()
    assert_clean(at)
    assert len(table(at, "model", "version", "description")) == 25
    assert any("of 35" in c.value for c in at.caption)
    at.button(key="models_next").click().run()
    assert len(table(at, "model", "version", "description")) == 10
    assert any("Page **2** of 2" in m.value for m in at.markdown)

    at.text_input(key="models_search").input("weekly").run()
    found = table(at, "model", "version", "description")
    assert list(found["description"]) == ["weekly retrain"]
    assert any("Page **1** of 1" in m.value for m in at.markdown)

    at.selectbox(key="models_stage").select("production").run()
    assert any("No version matches" in i.value for i in at.info), "weekly retrain is staging"
    at.text_input(key="models_search").input("").run()
    assert set(table(at, "model", "version", "description")["stage"]) == {"production"}


def test_version_page_shows_lineage_integrity_metrics_and_loss_curves(populated) -> None:
    at = sign_in("victor")
    open_page(at, "models")
    at.selectbox(key="models_open").select(f"{MODEL}@{populated.candidate}").run()
    assert_clean(at)
    assert any(f"{MODEL}@{populated.candidate}" in plain(s.value) for s in at.subheader)
    cells = " ".join(str(x) for df in at.dataframe for x in df.value.to_numpy().ravel())
    assert populated.dataset.label in cells and populated.dataset.sha256 in cells
    assert "ndcg@5" in cells and "numpy" in cells  # metrics, library versions
    assert any(re.search(r"All \d+ files match", plain(s.value)) for s in at.success)
    charts = at.get("plotly_chart")
    assert charts, "svd versions record loss curves"
    assert "val_loss" in charts[0].proto.spec
    timeline = table(at, "when", "action", "gates")
    assert list(timeline["action"]) == ["register"]


def test_modified_artifact_is_flagged_on_the_version_page(populated_env) -> None:
    env, populated = populated_env
    v = registry.get_version(MODEL, populated.candidate)
    target = env.artifacts / v.artifact_dir / next(iter(v.files))
    target.write_bytes(target.read_bytes() + b"tampered")
    at = sign_in("victor")
    open_page(at, "models")
    at.selectbox(key="models_open").select(v.label).run()
    assert not at.exception
    assert any("missing or modified" in plain(e.value) for e in at.error)


# ------------------------------------------------------------------------ deploy


def _review(at, version: str, stage: str, reason: str = "") -> None:
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
    registry.promote(actor=SYSTEM, model=MODEL, version=populated.staging, stage="production")
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


# ------------------------------------------------------------------------ compare


def test_compare_shows_metrics_with_deltas_trend_and_list_differences(populated) -> None:
    at = sign_in("victor")
    open_page(at, "compare")
    assert_clean(at)
    against_production, against_baseline = at.dataframe[0].value, at.dataframe[1].value
    production = f"{MODEL}@{populated.production}"
    candidate = f"{MODEL}@{populated.candidate}"
    baseline = f"{BASELINE}@{populated.baseline}"
    assert {production, candidate, baseline} <= set(against_production.columns)
    assert {"ndcg@5", "rmse"} <= set(against_production.index)
    assert re.fullmatch(r"\d\.\d{4}", against_production.loc["ndcg@5", production])
    assert re.fullmatch(r"\d\.\d{4} \([+-]\d\.\d{4}\)", against_production.loc["ndcg@5", candidate])
    assert re.fullmatch(r"\d\.\d{4}", against_baseline.loc["ndcg@5", baseline])
    assert "(" in against_baseline.loc["ndcg@5", production]
    assert at.get("plotly_chart"), "bars, trend and list charts"

    # The ranked lists of production against the candidate, on users of the dataset.
    assert any(m.label.startswith("Mean overlap@10") for m in at.metric)
    at.selectbox(key=f"compare_b_{MODEL}").select(f"{MODEL}@{populated.candidate}")
    at.number_input(key="compare_n").set_value(20).run()
    assert_clean(at)
    assert any(f"20 users from {populated.dataset.label}" in plain(c.value) for c in at.caption)

    # Against what another model serves: the popularity baseline.
    at.selectbox(key=f"compare_b_{MODEL}").select(baseline).run()
    assert_clean(at)
    overlap = next(m for m in at.metric if m.label.startswith("Mean overlap"))
    assert overlap.value.endswith("%")
    gained = table(at, "place", "category", "users")
    assert list(gained.columns) == ["place", "category", "users"]


# ------------------------------------------------------------------------ preview


def _lists(at) -> list:
    """The ranked lists on the page, production (or the newest version) first."""
    return [d.value for d in at.dataframe if {"#", "place", "score"} <= set(d.value.columns)]


def test_preview_follows_sliders_location_and_dataset_users(populated) -> None:
    at = sign_in("victor")
    open_page(at, "preview")
    assert_clean(at)
    before = _lists(at)[0]
    assert len(before) == 10

    at.slider(key="preview_r_15").set_value(5).run()  # museums
    assert_clean(at)
    after = _lists(at)[0]
    assert list(after["place"]) != list(before["place"]), "the list follows the slider"

    at.selectbox(key="preview_place").select("Retiro").run()
    assert at.number_input(key="preview_lat").value == pytest.approx(40.4153)
    assert_clean(at)
    assert list(_lists(at)[0]["place"]) != list(after["place"])

    user_id = at.selectbox(key="preview_user").options[3]
    at.selectbox(key="preview_user").select(user_id).run()
    assert_clean(at)
    assert any(user_id in plain(c.value) for c in at.caption)
    ratings = [at.slider(key=f"preview_r_{i}").value for i in range(29)]
    assert any(ratings)

    at.slider(key="preview_k").set_value(5).run()
    assert len(_lists(at)[0]) == 5
    at.button(key="preview_clear").click().run()
    assert not any(at.slider(key=f"preview_r_{i}").value for i in range(29))


def test_preview_puts_other_versions_beside_production(populated) -> None:
    at = sign_in("victor")
    open_page(at, "preview")
    candidate = f"{MODEL}@{populated.candidate}"
    baseline = f"{BASELINE}@{populated.baseline}"
    at.multiselect(key=f"preview_others_{MODEL}").select(candidate).select(baseline).run()
    assert_clean(at)
    assert [len(x) for x in _lists(at)] == [10, 10, 10]
    headings = plain(" ".join(m.value for m in at.markdown))
    for label in (f"{MODEL}@{populated.production}", candidate, baseline):
        assert f"**{label}**" in headings
    # Each version on its own map (shared places hide nothing), markers numbered by rank,
    # and without tiles (no browser has answered the tile probe here) the catalogue's places
    # drawn as the background: never a blank map.
    maps = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][:3]
    titles = [m["layout"]["title"]["text"] for m in maps]
    assert [t.split(" · ")[0] for t in titles] == [
        f"{MODEL}@{populated.production}",
        candidate,
        baseline,
    ]
    for figure in maps:
        traces = {t["name"]: t for t in figure["data"]}
        assert traces["catalogue"]["type"] == "scatter" and len(traces["catalogue"]["x"]) > 100
        assert traces["places by rank"]["text"] == [str(i) for i in range(1, 11)]
        assert "map" not in figure["layout"], "no tile map without tiles"
    assert at.toggle(key="preview_tiles").disabled
    # Each place's own types beside the category it matched.
    first = _lists(at)[0]
    assert "its types" in first.columns and first["its types"].str.len().min() > 0


def test_the_chosen_model_follows_the_user_from_page_to_page(populated) -> None:
    at = sign_in("victor")
    at.switch_page(PAGES["preview"]).run()
    assert at.selectbox(key="preview_model").value == MODEL, "not the baseline by default"
    at.selectbox(key="preview_model").select(BASELINE).run()
    at.switch_page(PAGES["deploy"]).run()
    assert_clean(at)
    assert at.selectbox(key="deploy_model").value == BASELINE
