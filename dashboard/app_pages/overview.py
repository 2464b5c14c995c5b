"""Overview: every model's versions in production, staging and waiting, its health, and news."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.registry.entities import ModelInfo
from dashboard import cache, session, ui

session.actor()
st.title("Overview")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No model is registered yet. Each model appears here with its production, staging "
        "and newest candidate versions, when it was last retrained, and its traffic, latency, "
        "error rate, drift and alerts over the last 24 hours.\n\n"
        "Register one with `python -m core train popularity --dataset NAME`, import the legacy "
        "autoencoder with `python -m core import-legacy`, or bootstrap a demo with "
        "`python -m core demo`."
    )
    st.stop()

candidates = cache.versions(stage="candidate", page_size=1).total
cols = st.columns(4)
cols[0].metric("Models", len(models))
cols[1].metric("Versions", sum(m.version_count for m in models))
cols[2].metric("In production", sum(m.production is not None for m in models))
cols[3].metric(
    "Candidates awaiting review",
    candidates,
    help="Versions registered but neither promoted nor archived.",
)


def _row(m: ModelInfo) -> dict[str, object]:
    spans = cache.production_history(m.name)
    since = spans[-1][1] if spans and spans[-1][2] is None else None
    candidate = cache.newest(m.name, "candidate")
    latest = cache.newest(m.name)
    staging = m.staging or ""
    if m.staging and m.canary_share > 0:
        staging += f" (canary {m.canary_share:.0%})"
    return {
        "model": m.name,
        "family": m.family,
        "production": m.production or "none",
        "in production since": since,
        "staging": staging or "none",
        "newest candidate": candidate.version if candidate else "none",
        "last retraining": ui.ago(latest.created_at) if latest else "never",
        "versions": m.version_count,
        "audit required": m.require_audit,
    }


st.subheader("Models", anchor=False)
st.dataframe(
    pd.DataFrame([_row(m) for m in models]),
    hide_index=True,
    key="overview_models",
    column_config={
        "in production since": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "audit required": st.column_config.CheckboxColumn(),
    },
)


def _health(m: ModelInfo) -> dict[str, object]:
    summary = cache.monitoring.summary(m.name, hours=24)
    drift, _ = cache.monitoring.drift_history(m.name, "data")
    latest = drift[-1] if drift else None
    served = summary.requests > 0
    return {
        "model": m.name,
        "requests": summary.requests,
        "error rate": ui.pct(summary.error_rate) if served else "—",
        "p99 latency": f"{summary.latency_p99_ms:.2f} ms" if served else "—",
        "click-through": ui.pct(summary.click_through) if served else "—",
        "data drift": ui.pct(latest.drift_share, 0) if latest else "—",
        "drift computed": ui.when(latest.computed_at) if latest else "—",
        "open alerts": len(cache.monitoring.open_alerts(m.name)),
    }


st.subheader("Serving health, last 24 hours", anchor=False)
health = pd.DataFrame([_health(m) for m in models])
if not health["requests"].any() and (health["data drift"] == "—").all():
    ui.empty_state(
        "Requests, p99 latency and error rate of each model appear here once the API serves it "
        "(`python -m api`) and logs its predictions; drift status and open alerts once the "
        "worker has computed its first reports. To see them now, replay generated users: "
        "`python -m core simulate NAME`."
    )
else:
    alerting = health.loc[health["open alerts"] > 0, "model"].tolist()
    if alerting:
        st.warning(
            "Open alerts on " + ", ".join(ui.md(a) for a in alerting) + " (Monitoring page).",
            icon=":material/notifications_active:",
        )
    st.dataframe(
        health,
        hide_index=True,
        key="overview_health",
        column_config={
            "data drift": st.column_config.TextColumn(
                help="Share of drifted columns in the latest report"
            ),
        },
    )

st.subheader("Recent stage changes", anchor=False)
events = cache.recent_events(limit=10)
if not events:
    st.caption("No stage change yet.")
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": e.created_at,
                    "model": e.model,
                    "version": e.version,
                    "action": e.action,
                    "from": e.from_stage or "",
                    "to": e.to_stage,
                    "by": e.actor,
                    "reason": e.reason,
                }
                for e in events
            ]
        ),
        hide_index=True,
        key="overview_events",
        column_config={"when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )
