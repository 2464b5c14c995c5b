"""Deploy: the stage board, gated promotion, one-step rollback, canary share and the timeline.

Every change passes the stage revision the page showed (``expected_revision``), so an operator
acting on a stale page is told that someone else changed the model meanwhile, instead of
silently overriding them. The confirmation is an inline step (not a dialog) that lists every
gate with its figures.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from core import registry
from core.errors import BadInput, CoreError
from core.registry.entities import ModelInfo, VersionInfo
from core.registry.stages import stated_reason
from dashboard import cache, charts, session, ui

actor = session.actor()
st.title("Deploy")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No model to deploy yet. Here each model's versions stand on a board of stages "
        "(candidate, staging, production, archived); operators promote a version through its "
        "gates, roll production back in one step and set the canary share, and the timeline "
        "shows what was in production when."
    )
    st.stop()

m = ui.pick_model("deploy_model", models)
can_operate = actor.can("operate")
BOARD_LIMIT = 8
CARD_METRICS = ("ndcg@10", "ndcg@5", "rmse")

# ------------------------------------------------------------------------ stage board

board = st.columns(4)


def _card(v: VersionInfo) -> None:
    with st.container(border=True):
        st.markdown(f"**{ui.md(v.version)}** {ui.badge(v.stage)}")
        metrics = ", ".join(
            f"{name} {ui.fmt_metric(v.metrics[name])}"
            for name in CARD_METRICS
            if isinstance(v.metrics.get(name), int | float)
        )
        st.caption(
            f"{ui.when(v.created_at)} · {ui.md(v.created_by)}"
            + (f"  \n{ui.md(metrics)}" if metrics else "")
        )


for col, stage in zip(board, ("candidate", "staging", "production", "archived"), strict=True):
    with col:
        page = cache.versions(model=m.name, stage=stage, page_size=BOARD_LIMIT)
        title = stage.capitalize() + (f" ({page.total})" if page.total else "")
        st.markdown(f"#### {title}")
        if stage == "staging" and page.items:
            st.caption(f"canary share {m.canary_share:.0%} of traffic")
        for v in page.items:
            _card(v)
        if page.total > len(page.items):
            st.caption(f"…and {page.total - len(page.items)} more (Models page)")
        if not page.items:
            st.caption("none")

st.caption(f"Stage revision {m.stage_revision}: every stage change raises it by one.")

# ------------------------------------------------------------------------ actions

PENDING = "deploy_pending"


def _review() -> None:
    state = st.session_state
    number = state.get(f"deploy_version_{m.name}")
    if not number:
        ui.flash("error", "Choose a version to promote.")
        return
    try:  # core's rule, asked before the gates are shown rather than after they passed
        reason = stated_reason(state.get("deploy_reason", ""), "promotion")
    except BadInput as exc:
        ui.flash("error", str(exc))
        return
    v = registry.get_version(m.name, number)  # fresh: the stage the promotion will expect
    state[PENDING] = {
        "model": m.name,
        "version": number,
        "stage": state.get("deploy_target", "staging"),
        "reason": reason,
        "revision": m.stage_revision,
        "from_stage": v.stage,
    }


def _cancel() -> None:
    st.session_state.pop(PENDING, None)


def _promote(pending: dict[str, Any]) -> str:
    st.session_state.pop(PENDING, None)
    change = registry.promote(
        actor=session.acting(),
        model=pending["model"],
        version=pending["version"],
        stage=pending["stage"],
        reason=pending["reason"],
        expected_revision=pending["revision"],
        expected_stage=pending["from_stage"],
    )
    st.session_state["deploy_reason"] = ""
    displaced = f"; {change.displaced.version} was archived" if change.displaced is not None else ""
    return f"{pending['model']}@{pending['version']} is now in {pending['stage']}{displaced}."


def _rollback(model: ModelInfo, plan: registry.RollbackPlan) -> str:
    """Roll back from the version the page showed, to the one chosen; core refuses if
    production changed meanwhile (another operator, or this click twice)."""
    reason = st.session_state.get("deploy_rollback_reason", "")
    target = st.session_state.get(f"deploy_rollback_to_{model.name}") or plan.target
    change = registry.rollback(
        actor=session.acting(),
        model=model.name,
        reason=reason,
        expected_revision=model.stage_revision,
        expected_from=plan.current,
        to_version=target,
    )
    st.session_state["deploy_rollback_reason"] = ""
    rolled_from = change.displaced.version if change.displaced is not None else plan.current
    return (
        f"Rolled back {model.name} from {rolled_from} to {change.event.version}: "
        f"{change.event.version} is in production again."
    )


def _save_settings(model: ModelInfo) -> str:
    share = st.session_state.get(f"deploy_canary_{model.name}", 0) / 100
    require = bool(st.session_state.get(f"deploy_audit_{model.name}", model.require_audit))
    reason = st.session_state.get(f"deploy_audit_reason_{model.name}", "").strip()
    registry.update_model(
        actor=session.acting(),
        name=model.name,
        canary_share=share,
        require_audit=require,
        reason=reason,
    )
    st.session_state[f"deploy_audit_reason_{model.name}"] = ""
    return (
        f"{model.name}: canary share {share:.0%}, audit "
        + ("required" if require else "not required")
        + " for production."
    )


def _gate_figures(gate: dict[str, Any]) -> pd.DataFrame | None:
    """The figures behind a gate's verdict as a table (one row per metric for ``metrics``)."""
    figures = gate.get("figures") or {}
    if not figures:
        return None
    if all(isinstance(v, dict) for v in figures.values()):
        rows = []
        for metric, f in figures.items():
            higher = f.get("higher_is_better")
            rows.append(
                {
                    "metric": metric,
                    "candidate": f.get("candidate"),
                    "production": f.get("production"),
                    "delta": f.get("delta"),
                    "tolerance": f.get("tolerance"),
                    "better when": "—" if higher is None else ("higher" if higher else "lower"),
                    "passed": bool(f.get("passed")),
                }
            )
        return pd.DataFrame(rows)
    return pd.DataFrame(
        [{"figure": k, "value": "—" if v is None else str(v)} for k, v in figures.items()]
    )


if not can_operate:
    st.info(
        f"Your role ({actor.role}) can look at the board and the timeline. Operators and admins "
        "promote, roll back and set the canary share."
    )
else:
    # Keyed, so the open tab survives the reruns that a flash message or a typed reason cause.
    promote_tab, rollback_tab, settings_tab = st.tabs(
        ["Promote", "Roll back", "Canary and audit"], key="deploy_tab", on_change="rerun"
    )
    with promote_tab:
        candidates = [
            v
            for stage in ("candidate", "staging", "archived")
            for v in cache.versions(model=m.name, stage=stage, page_size=100).items
        ]
        pending = st.session_state.get(PENDING)
        if pending is not None and pending["model"] != m.name:
            st.session_state.pop(PENDING, None)
            pending = None
        if not candidates:
            ui.empty_state("No version other than production to promote.")
        elif pending is None:
            c = st.columns([2, 2, 4])
            c[0].selectbox(
                "Version",
                [v.version for v in candidates],
                key=f"deploy_version_{m.name}",
                format_func=lambda n: f"{n} · {cache.version(m.name, n).stage}",
            )
            c[1].radio("To", ["staging", "production"], key="deploy_target", horizontal=True)
            c[2].text_input(
                "Reason",
                key="deploy_reason",
                placeholder="why this version (goes into the audit log)",
            )
            st.button("Review gates", key="deploy_review", type="primary", on_click=_review)
        else:
            with st.expander(
                f"Confirm: promote {pending['model']}@{pending['version']} to {pending['stage']}",
                expanded=True,
            ):
                try:
                    gates = registry.preview_gates(
                        pending["model"], pending["version"], pending["stage"], actor=actor
                    )
                except CoreError as exc:
                    ui.error(exc)
                    gates = []
                for gate in gates:
                    (st.success if gate["passed"] else st.error)(
                        f"**{ui.md(gate['name'])}** gate: {ui.md(gate['detail'])}"
                    )
                    figures = _gate_figures(gate)
                    if figures is not None:
                        st.dataframe(
                            figures,
                            hide_index=True,
                            key=f"deploy_gate_{gate['name']}",
                            column_config={
                                name: st.column_config.NumberColumn(format="%.4f")
                                for name in ("candidate", "production", "delta")
                                if name in figures.columns
                            },
                        )
                failed = [g for g in gates if not g["passed"]]
                holder = m.production if pending["stage"] == "production" else m.staging
                if holder and holder != pending["version"]:
                    st.markdown(
                        f"{ui.md(holder)} leaves {pending['stage']} and is archived"
                        + (
                            "; it stays available for a rollback."
                            if pending["stage"] == "production"
                            else "."
                        )
                    )
                st.caption(
                    f"Reason: {ui.md(pending['reason']) or '(none given)'} · the page showed stage "
                    f"revision {pending['revision']}; if the model changed since, the promotion is "
                    "refused and the board reloads."
                )
                b = st.columns([2, 1, 5])
                b[0].button(
                    "Confirm promotion",
                    key="deploy_confirm",
                    type="primary",
                    disabled=bool(failed) or not gates,
                    on_click=ui.act,
                    args=(lambda: _promote(pending),),
                    help="Every gate must pass." if failed else None,
                )
                b[1].button("Cancel", key="deploy_cancel", on_click=_cancel)

    with rollback_tab:
        # The target and the reason for it come from core's one rule (never recomputed here).
        try:
            plan: registry.RollbackPlan | None = registry.rollback_plan(m.name)
        except CoreError as exc:
            ui.error(exc)
            plan = None
        if plan is None:
            pass
        elif plan.current is None:
            ui.empty_state("Nothing in production to roll back.")
        elif plan.target is None:
            ui.empty_state(
                f"{ui.md(plan.current)} stays in production: {ui.md(plan.why)}."
                if plan.rolled_back_from
                else f"{ui.md(plan.current)} is the first production version: there is no "
                "earlier one to return to."
            )
        else:
            choice_key = f"deploy_rollback_to_{m.name}"
            if st.session_state.get(choice_key) not in plan.choices:
                st.session_state.pop(choice_key, None)
            rule_target: str = plan.target
            target = rule_target
            if len(plan.choices) > 1:
                target = (
                    st.selectbox(
                        "Roll back to",
                        plan.choices,
                        key=choice_key,
                        format_func=lambda n: (
                            n + (" (the rule's choice)" if n == rule_target else "")
                        ),
                        help="The rule's choice comes first; an earlier production version may "
                        "be chosen instead. A version that was rolled back from is never offered.",
                    )
                    or rule_target
                )
            st.write(
                f"Production goes back from **{ui.md(plan.current)}** to "
                f"**{ui.md(target)}** in one step."
            )
            st.caption(
                "Why: "
                + (
                    ui.md(plan.why)
                    if target == plan.target
                    else f"{ui.md(target)} was chosen instead of {ui.md(plan.target)}, the last "
                    "production version not rolled back from."
                )
                + f" If production is no longer {ui.md(plan.current)} when you confirm, "
                "nothing is rolled back."
            )
            st.text_input(
                "Reason", key="deploy_rollback_reason", placeholder="what went wrong (required)"
            )
            st.button(
                "Roll back production",
                key="deploy_rollback",
                type="primary",
                icon=":material/undo:",
                on_click=ui.act,
                args=(lambda: _rollback(m, plan),),
            )

    with settings_tab:
        st.slider(
            "Canary share of traffic for the staging version (%)",
            0,
            100,
            int(round(m.canary_share * 100)),
            key=f"deploy_canary_{m.name}",
            help="The API sends this share of requests to the staging version and the rest to "
            "production.",
        )
        st.toggle(
            "Require an approving audit before production",
            value=m.require_audit,
            key=f"deploy_audit_{m.name}",
            help="The approving auditor cannot be the one who promotes the version.",
        )
        st.text_input(
            "Reason for changing the audit requirement",
            key=f"deploy_audit_reason_{m.name}",
            placeholder="required to switch it off; goes into the settings log",
        )
        st.button("Save", key="deploy_save", on_click=ui.act, args=(lambda: _save_settings(m),))
        try:
            changes = registry.setting_events(m.name)
        except CoreError as exc:
            ui.error(exc)
            changes = []
        if changes:
            st.caption("Changes of the audit requirement (append-only)")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "when": ui.when(e.created_at),
                            "stage": e.stage,
                            "change": ("required" if e.new_value else "not required"),
                            "by": e.actor,
                            "reason": e.reason or "—",
                        }
                        for e in changes
                    ]
                ),
                hide_index=True,
                key="deploy_setting_events",
            )

# ------------------------------------------------------------------------ timeline

st.subheader("Timeline", anchor=False)
spans = cache.production_history(m.name)
if spans:
    st.plotly_chart(charts.production_spans(spans), key="deploy_spans")
else:
    st.caption("No version of this model has been in production yet.")

with st.expander("What was in production at a given time?"):
    c = st.columns([1, 1, 2], vertical_alignment="bottom")
    day = c[0].date_input("Day (UTC)", key="deploy_at_day")
    moment = c[1].time_input("Time (UTC)", key="deploy_at_time", value=dt.time(12, 0))
    when = dt.datetime.combine(day, moment, tzinfo=dt.UTC)
    try:
        found = registry.production_at(m.name, when)
    except CoreError as exc:
        ui.error(exc)
    else:
        c[2].markdown(
            f"At {ui.when(when)}: **{ui.md(found)}**" if found else f"At {ui.when(when)}: nothing"
        )

events = cache.timeline(m.name)
if events:
    ui.stage_events(events, key="deploy_events")
