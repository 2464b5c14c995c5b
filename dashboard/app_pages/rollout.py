"""Rollout: the evidence behind a staging version's way to production.

The rollout plan and its current step, the A/B readout of the canary against production
(click-through per arm over time with 95 % bands, the difference with its always-valid
interval and the decision), the guardrails' states, and the shadow comparison (what the
candidate would have shown the users production served). Everyone sees it; operators start,
pause, resume and abort plans, and set the canary share and the shadow sample by hand
(``core`` checks the role again).
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import rollout
from core.errors import BadInput, CoreError
from core.rollout import ab, shadow
from dashboard import cache, session, ui
from dashboard.charts import PALETTE

P = "rollout"  # prefix of this page's state keys
ARM_COLOURS = {"production": PALETTE[0], "canary": PALETTE[1]}

actor = session.actor()
st.title("Rollout")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No model is registered yet. For a model with a staging version this page shows the "
        "rollout plan and its step, the A/B readout of the canary against production, the "
        "guardrails, and what the candidate would have shown users in shadow."
    )
    st.stop()

m = ui.pick_model(f"{P}_model", models)
info = cache.model(m.name)
operator = actor.can("operate")


def _num(value: float | None, fmt: str = "{:.4f}") -> str:
    return "—" if value is None or not math.isfinite(value) else fmt.format(value)


def _done(message: str) -> str:
    cache.rollout.rollout_changed()
    return message


# ------------------------------------------------------------------------ the plan

plan = cache.rollout.plan(m.name)
st.subheader("Plan", anchor=False)
ui.facts(
    [
        ("Production", info.production or "—"),
        ("Staging (canary)", info.staging or "—"),
        ("Canary share now", ui.pct(info.canary_share, 0)),
        ("Plan", "none yet" if plan is None else f"#{plan.id} {plan.status.replace('_', ' ')}"),
    ]
)
if plan is not None:
    steps = " → ".join(
        f"**[{s:.0%}]**" if i == plan.step and plan.live else f"{s:.0%}"
        for i, s in enumerate(plan.steps)
    )
    st.markdown(
        f"Rollout #{plan.id} of **{ui.md(plan.version)}**: {steps} — step {plan.step + 1} of "
        f"{len(plan.steps)}, at least {plan.min_soak_s:.0f} s and {plan.min_requests:,} "
        f"canary requests per step; started by {ui.md(plan.created_by)} {ui.ago(plan.created_at)}."
    )
    if plan.message:
        st.caption(ui.md(plan.message))
    trail = cache.rollout.events(plan.id)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": e.ts,
                    "who": e.actor,
                    "action": e.action,
                    "step": e.step + 1,
                    "share": e.share,
                    "decision": e.figures.get("decision", ""),
                    "note": e.message,
                }
                for e in trail
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"share": st.column_config.NumberColumn(format="percent")},
    )

if operator:
    live = plan is not None and plan.live
    if live:
        assert plan is not None
        reason = st.text_input("Reason (kept in the plan's events)", key=f"{P}_reason")
        seen_step = plan.step  # the step this page showed: a plan that moved is not touched

        def _pause() -> str:
            done = rollout.pause(
                actor=session.acting(), model=m.name, reason=reason, expected_step=seen_step
            )
            return _done(f"Paused rollout #{done.id} at {done.share:.0%}.")

        def _resume() -> str:
            done = rollout.resume(actor=session.acting(), model=m.name, reason=reason)
            return _done(f"Resumed rollout #{done.id} at {done.share:.0%}.")

        def _abort() -> str:
            done = rollout.abort(
                actor=session.acting(), model=m.name, reason=reason, expected_step=seen_step
            )
            return _done(f"Aborted rollout #{done.id}; the canary share is back at 0.")

        left, right = st.columns(2)
        if plan.status == "running":
            left.button("Pause", key=f"{P}_pause", icon=":material/pause:", on_click=ui.act,
                        args=(_pause,))  # fmt: skip
        else:
            left.button("Resume", key=f"{P}_resume", icon=":material/play_arrow:",
                        on_click=ui.act, args=(_resume,))  # fmt: skip
        right.button("Abort (share back to 0)", key=f"{P}_abort", icon=":material/cancel:",
                     type="primary", on_click=ui.act, args=(_abort,))  # fmt: skip
    elif info.staging is not None:
        with st.expander("Start a rollout of the staging version", icon=":material/trending_up:"):
            with st.form(f"{P}_start"):
                steps_text = st.text_input("Steps (canary shares)", "0.05, 0.25, 0.5, 1")
                a, b = st.columns(2)
                soak = a.number_input("Minimum soak per step (s)", 0.0, 30 * 86400.0, 300.0)
                needed = b.number_input("Minimum canary requests per step", 0, 10**8, 500)
                c, d = st.columns(2)
                max_errors = c.number_input(
                    "Maximum error rate", 0.0, 0.99, ab.DEFAULTS["max_error_rate"], format="%.3f"
                )
                max_p99 = d.number_input("Maximum p99 latency (ms)", 1.0, 60000.0, 500.0)
                better = st.checkbox("Promote only once the canary is shown better")
                why = st.text_input("Reason")
                submitted = st.form_submit_button("Start", type="primary")
            if submitted:

                def _start() -> str:
                    try:
                        values = [float(x) for x in steps_text.replace(" ", "").split(",") if x]
                    except ValueError:
                        raise BadInput(f"steps must be numbers, got {steps_text!r}") from None
                    limits: dict[str, object] = {
                        "max_error_rate": max_errors,
                        "max_p99_ms": max_p99,
                    }
                    if better:
                        limits["require_better"] = True
                    started = rollout.start(
                        actor=session.acting(), model=m.name, steps=values,
                        min_soak_s=soak, min_requests=int(needed), thresholds=limits, reason=why,
                    )  # fmt: skip
                    return _done(f"Started rollout #{started.id} at {started.share:.0%}.")

                if ui.guarded(_start):
                    st.rerun()
    with st.expander("Canary share and shadow sample by hand", icon=":material/tune:"):
        a, b = st.columns(2)
        share = a.number_input(
            "Canary share", 0.0, 1.0, float(info.canary_share), step=0.05, key=f"{P}_share",
            disabled=live or info.staging is None,
            help="Held by the running plan while one is live.",
        )  # fmt: skip

        def _set_share() -> str:
            done = rollout.set_share(actor=session.acting(), model=m.name, share=share)
            return _done(f"Canary share of {m.name} set to {done:.0%}.")

        def _set_rate() -> str:
            done = shadow.set_rate(actor=session.acting(), model=m.name, rate=rate)
            return _done(f"Shadow sample of {m.name} set to {done:.0%}.")

        a.button("Set canary share", key=f"{P}_set_share", disabled=live or info.staging is None,
                 on_click=ui.act, args=(_set_share,))  # fmt: skip
        rate = b.number_input(
            "Shadow sample of production's requests", 0.0, 1.0,
            shadow.rate_of(info.settings), step=0.05, key=f"{P}_shadow_rate",
        )  # fmt: skip
        b.button("Set shadow sample", key=f"{P}_set_shadow", on_click=ui.act, args=(_set_rate,))

# ------------------------------------------------------------------------ the A/B readout

st.subheader("A/B readout", anchor=False)
if info.staging is None or info.production is None:
    st.caption("A readout needs a production and a staging version.")
else:
    since = plan.created_at if plan is not None and plan.live else None
    thresholds = (
        {k: v for k, v in plan.thresholds.items() if k in ab.DEFAULTS}
        if plan is not None and plan.live
        else None
    )
    try:
        r = cache.rollout.readout(m.name, since, thresholds)
    except CoreError as exc:
        ui.error(exc)
        st.stop()
    cols = st.columns(4)
    for col, (name, arm) in zip(
        cols[:2], (("Production", r.production), ("Canary", r.canary)), strict=True
    ):
        col.metric(
            f"{name} CTR ({ui.md(arm.version)})",
            _num(arm.ctr, "{:.2%}") if arm.requests else "—",
            help=f"{arm.clicks:,} clicks in {arm.requests:,} requests; 95 % Wilson interval "
            f"{_num(arm.ctr_ci[0], '{:.2%}')} – {_num(arm.ctr_ci[1], '{:.2%}')}",
        )
    cols[2].metric(
        "Difference (canary − production)",
        _num(r.difference, "{:+.2%}"),
        help=f"always-valid {100 * (1 - r.alpha):.0f} % interval "
        f"{_num(r.ci[0], '{:+.2%}')} – {_num(r.ci[1], '{:+.2%}')}",
    )
    cols[3].metric("Decision", r.decision)
    st.caption(
        f"{ab.METHOD}. Interval of the difference: {_num(r.ci[0], '{:+.2%}')} to "
        f"{_num(r.ci[1], '{:+.2%}')} (valid whenever one looks; a single planned look would "
        f"give {_num(r.ci_fixed_horizon[0], '{:+.2%}')} to "
        f"{_num(r.ci_fixed_horizon[1], '{:+.2%}')}). Since {r.since:%Y-%m-%d %H:%M} UTC."
        + (
            f" About {r.more_requests:,} more requests to detect a difference of "
            f"{r.detectable:.2%}"
            + (f" (~{r.hours_needed:.1f} h at this traffic)." if r.hours_needed else ".")
            if r.more_requests is not None
            else ""
        )
    )
    points = cache.rollout.ctr_series(m.name, info.production, info.staging, r.since)
    if points:
        fig = go.Figure()
        for arm_name in ("production", "canary"):
            rows = [p for p in points if p.arm == arm_name]
            if not rows:
                continue
            x = [p.hour for p in rows]
            colour = ARM_COLOURS[arm_name]
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=[p.high for p in rows] + [p.low for p in rows][::-1],
                    fill="toself",
                    mode="lines",
                    fillcolor=colour,
                    opacity=0.2,
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{arm_name} 95 % band",
                    showlegend=False,
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[p.ctr for p in rows],
                    mode="lines+markers",
                    name=f"{arm_name} ({rows[0].version})",
                    line={"color": colour},
                    customdata=[[p.requests, p.clicks] for p in rows],
                    hovertemplate="%{y:.2%} (%{customdata[1]} clicks / "
                    "%{customdata[0]} requests)<extra></extra>",
                )
            )
        fig.update_layout(
            height=320,
            margin={"l": 10, "r": 10, "t": 30, "b": 10},
            yaxis={"title": "click-through per hour", "tickformat": ".0%"},
            legend={"orientation": "h", "y": 1.12},
        )
        st.plotly_chart(fig, key=f"{P}_ctr_chart")
    else:
        st.caption("No canary traffic with clicks yet.")

    st.markdown(f"**Guardrails** — overall: `{r.verdict}`")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "guardrail": g.name,
                    "status": g.status,
                    "canary": g.value,
                    "limit": g.threshold,
                    "production": g.production,
                    "blocks a step": g.blocking,
                    "detail": g.detail,
                }
                for g in r.guardrails
            ]
        ),
        hide_index=True,
        width="stretch",
    )

# ------------------------------------------------------------------------ shadow

st.subheader("Shadow comparison", anchor=False)
s = cache.rollout.shadow_summary(m.name)
if not s.requests:
    st.caption(
        "No request was shadow-scored in the last 24 hours. An operator sets the share of "
        "production's requests the staging version scores off the response path (above); "
        "the users are still served by production."
    )
else:
    shadow_cols = st.columns(5)
    shadow_cols[0].metric("Requests scored", f"{s.requests:,}", help=f"{s.errors} failed")
    shadow_cols[1].metric("Overlap@k", _num(s.overlap_mean, "{:.1%}"))
    shadow_cols[2].metric("Places gained / lost", f"{_num(s.gained_mean, '{:.1f}')} / "
                   f"{_num(s.lost_mean, '{:.1f}')}")  # fmt: skip
    shadow_cols[3].metric("Category shift", _num(s.category_shift_mean, "{:.1%}"))
    shadow_cols[4].metric(
        "Shadow latency p50 / p95",
        f"{_num(s.latency_p50_ms, '{:.1f}')} / {_num(s.latency_p95_ms, '{:.1f}')} ms",
    )
    st.caption(
        f"Staging {ui.md(s.shadow_version)} against production "
        f"{', '.join(s.production_versions)} on the same requests, last 24 hours."
    )
    mix = pd.DataFrame(
        [
            {"category": c, "side": side, "share": shares[side]}
            for c, shares in s.category_mix.items()
            for side in ("production", "shadow")
        ]
    )
    fig = go.Figure()
    for side, colour in (("production", PALETTE[0]), ("shadow", PALETTE[2])):
        part = mix[mix["side"] == side]
        fig.add_trace(go.Bar(x=part["category"], y=part["share"], name=side, marker_color=colour))
    fig.update_layout(
        barmode="group",
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis={"title": "share of shown places", "tickformat": ".0%"},
        legend={"orientation": "h", "y": 1.12},
    )
    st.plotly_chart(fig, key=f"{P}_mix_chart")
    names = cache.rollout.place_names()
    left, right = st.columns(2)
    left.markdown("**Most often gained**")
    left.dataframe(
        pd.DataFrame([{"place": names.get(p, p), "times": n} for p, n in s.top_gained]),
        hide_index=True,
    )
    right.markdown("**Most often lost**")
    right.dataframe(
        pd.DataFrame([{"place": names.get(p, p), "times": n} for p, n in s.top_lost]),
        hide_index=True,
    )
    st.markdown("**What the candidate would have shown (latest requests)**")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": x.ts,
                    "overlap": x.overlap,
                    "would show": ", ".join(names.get(p, p) for p in x.gained),
                    "would drop": ", ".join(names.get(p, p) for p in x.lost),
                    "latency (ms)": round(x.latency_ms, 2),
                }
                for x in cache.rollout.shadow_recent(m.name)
            ]
        ),
        hide_index=True,
        width="stretch",
        column_config={"overlap": st.column_config.NumberColumn(format="percent")},
    )
