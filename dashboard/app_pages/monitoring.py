"""Monitoring: how a model is served and what its lists look like, over time, and alerts.

Traffic comes from the hourly rollups ``core`` keeps beside the prediction log (a year of
traffic is a few thousand rows, however many millions of requests it was), split by variant
(the production version and its canary). Drift, service checks and the label-free
recommendation health come from the worker's monitoring job (``core.monitoring.monitor``), which
computes
each window of live traffic once it has ended; the page shows when that last happened and when
the next window is due, and operators may ask the worker to recompute. Open alerts are listed
for everyone; operators resolve them here, and ``core`` checks the role again when they do.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import streamlit as st

from core.errors import BadInput
from core.metrics import health
from core.monitoring import alerts, monitor
from dashboard import cache, monitor_charts, session, ui

P = "monitoring"  # prefix of this page's state keys
PERIODS = {"24 hours": 1, "7 days": 7, "30 days": 30, "90 days": 90, "1 year": 365}
BUCKETS = {"hour": 1, "day": 24}
HOURLY_DAYS = 30  # longer periods by hour would draw thousands of points per line
RESOURCE_DAYS = 30  # the worker keeps resource samples this long (jobs.tasks)
RESOLVE = f"{P}_resolve_ids"

actor = session.actor()
st.title("Monitoring")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No model is registered yet. For each model this page will show the requests it "
        "serves over time (production and canary apart), latency percentiles, error rate and "
        "click-through, the last 24 hours at a glance, and the open alerts.\n\n"
        "Bootstrap a demo with `python -m core demo`, or train and promote a model and replay "
        "traffic through it with `python -m core simulate NAME`."
    )
    st.stop()

m = ui.pick_model(f"{P}_model", models)


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1f} ms"


# ------------------------------------------------------------------------ last 24 hours

st.subheader("Last 24 hours", anchor=False)
summary = cache.monitoring.summary(m.name)
limits = cache.monitoring.alert_thresholds(m.name)
c = st.columns(5)
c[0].metric("Requests", f"{summary.requests:,}")
c[1].metric("Error rate", f"{summary.error_rate:.1%}" if summary.requests else "—")
c[2].metric("Click-through", f"{summary.click_through:.1%}" if summary.requests else "—")
c[3].metric("p50 latency", _ms(summary.latency_p50_ms))
c[4].metric("p99 latency", _ms(summary.latency_p99_ms))
if not summary.requests:
    st.caption("No request was logged in the last 24 hours.")

# ------------------------------------------------------------------------ the monitoring job

job = cache.monitoring.job_status(m.name)


def _when(value: dt.datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


minutes = job.window.total_seconds() / 60
window_text = f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"
st.caption(
    f"Monitoring job: windows of {window_text}; last window computed up to "
    f"{_when(job.last_window_end)} (at {_when(job.last_computed_at)}); next due "
    f"{_when(job.next_due_at)}."
    + (f" {job.failed} window results failed (see Jobs)." if job.failed else "")
    + (
        f" {job.pending_requests} recomputation waiting for the worker."
        if job.pending_requests
        else ""
    )
)
if actor.can("operate"):
    with st.popover("Recompute", icon=":material/refresh:"):
        span = st.selectbox(
            "Windows from",
            ["the last hour", "the last 24 hours", "the last 7 days"],
            key=f"{P}_recompute_span",
        )

        def _recompute() -> None:
            hours = {"the last hour": 1, "the last 24 hours": 24, "the last 7 days": 168}[span]

            def action() -> str:
                monitor.request_recompute(
                    actor=session.acting(),
                    model=m.name,
                    since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours),
                )
                return f"The worker will recompute {m.name}'s windows of {span} at its next look."

            ui.guarded(action)
            cache.monitoring.monitor_changed()

        st.button("Queue for the worker", key=f"{P}_recompute", on_click=_recompute)

# ------------------------------------------------------------------------ over time

st.subheader("Over time", anchor=False)
left, right = st.columns(2)
period = left.segmented_control(
    "Period", list(PERIODS), key=f"{P}_period", default="30 days", required=True
)
bucket = right.segmented_control(
    "Bucket",
    list(BUCKETS),
    key=f"{P}_bucket",
    default="day",
    required=True,
    help="Buckets are whole UTC hours or days.",
)
days, hours = PERIODS[period or "30 days"], BUCKETS[bucket or "day"]
if hours == 1 and days > HOURLY_DAYS:
    hours = 24
    st.caption(f"Hourly buckets go up to {HOURLY_DAYS} days; this period is shown by day.")
frame = cache.monitoring.traffic(m.name, days=days, bucket_hours=hours)
if frame.empty:
    ui.empty_state(
        f"No request of {ui.md(m.name)} was logged in the last {period}. Volume, latency, error "
        "rate and click-through appear here, per variant, once the API serves the model "
        "(`python -m api`) and logs its predictions (choose a longer period for older "
        "traffic).\n\n"
        f"To see them now, replay generated users through it: `python -m core simulate {m.name}`."
    )
else:
    totals = frame.groupby("variant", sort=False)[["requests", "errors", "clicks"]].sum()
    st.caption(
        " · ".join(
            f"{ui.md(variant)}: {int(t.requests):,} requests, {int(t.errors):,} errors, "
            f"{int(t.clicks):,} clicks"
            for variant, t in totals.iterrows()
        )
    )
    top = st.columns(2)
    top[0].plotly_chart(monitor_charts.volume(frame), key=f"{P}_volume")
    top[1].plotly_chart(monitor_charts.latency(frame), key=f"{P}_latency")
    bottom = st.columns(2)
    bottom[0].plotly_chart(
        monitor_charts.rate(frame, "error_rate", "Error rate", limit=limits["error_rate"]),
        key=f"{P}_errors",
    )
    bottom[1].plotly_chart(
        monitor_charts.rate(frame, "click_through", "Click-through"), key=f"{P}_clicks"
    )

usage = cache.insight.resource_usage(min(days, RESOURCE_DAYS))
if usage.empty:
    st.caption(
        "Service resources: the API (`python -m api`) and the worker (`python -m jobs.worker`) "
        "sample their CPU and memory every 15 s; none were recorded in this period."
    )
else:
    if days > RESOURCE_DAYS:
        st.caption(f"Service resources are kept for {RESOURCE_DAYS} days.")
    st.plotly_chart(monitor_charts.resources(usage), key=f"{P}_resources")

# ------------------------------------------------------------------------ health

st.subheader("Recommendation health", anchor=False)
frame_h = cache.monitoring.health(m.name, days=days)
if frame_h.empty:
    st.caption(
        "No window holds health figures in this period. The worker computes them from the "
        "served lists of each window with enough requests: catalogue coverage, popularity bias, "
        "Gini of exposure, novelty, category diversity, personalisation, and the list churn of "
        "a new production version."
    )
else:
    names = {k: v[0] for k, v in health.METRICS.items() if k in set(frame_h["metric"])}
    chosen = st.segmented_control(
        "Figure",
        list(names),
        key=f"{P}_health_metric",
        default=next(iter(names)),
        format_func=lambda k: names[k],
        required=True,
    ) or next(iter(names))
    st.plotly_chart(
        monitor_charts.health_over_time(
            frame_h, chosen, names[chosen], cache.monitoring.production_changes(m.name)
        ),
        key=f"{P}_health",
    )
by_version = cache.monitoring.health_by_version(m.name)
if len(by_version) >= 2:
    st.plotly_chart(
        monitor_charts.health_across_versions(
            by_version,
            {k: health.METRICS[k][0] for k in ("coverage", "diversity", "personalisation", "gini")},
        ),
        key=f"{P}_health_versions",
    )
# ------------------------------------------------------------------------ alerts

st.subheader("Open alerts", anchor=False)
open_alerts = cache.monitoring.open_alerts(m.name)
if not open_alerts:
    st.caption(
        f"No open alert for {ui.md(m.name)}. An alert is raised when a drift result's share "
        f"of drifted columns reaches {limits['drift_share']:.0%}, one input column's score "
        f"reaches {limits['feature_drift']:g}, the error rate reaches {limits['error_rate']:.0%} "
        f"or p99 latency {limits['latency_p99_ms']:.0f} ms; it stays open until an operator "
        "resolves it."
    )
else:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "#": a.id,
                    "raised": a.created_at,
                    "severity": a.severity,
                    "kind": a.kind,
                    "subject": a.subject,
                    "message": a.message,
                    "value": a.value,
                    "threshold": a.threshold,
                    "version": a.version or "",
                }
                for a in open_alerts
            ]
        ),
        hide_index=True,
        column_config={
            "raised": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "value": st.column_config.NumberColumn(format="%.3f"),
            "threshold": st.column_config.NumberColumn(format="%.3f"),
        },
    )
    if actor.can("operate"):
        by_id = {a.id: a for a in open_alerts}
        st.session_state[RESOLVE] = [i for i in st.session_state.get(RESOLVE, []) if i in by_id]

        def _resolve() -> None:
            chosen = list(st.session_state.get(RESOLVE, []))

            def action() -> str:
                if not chosen:
                    raise BadInput("choose the alerts to resolve")
                who = session.acting()
                for alert_id in chosen:
                    alerts.resolve(actor=who, alert_id=alert_id)
                return f"Resolved {len(chosen)} alert{'s' if len(chosen) != 1 else ''}."

            if ui.guarded(action):
                st.session_state[RESOLVE] = []
            cache.monitoring.alerts_changed()

        pick, press = st.columns([4, 1], vertical_alignment="bottom")
        pick.multiselect(
            "Alerts to resolve",
            list(by_id),
            key=RESOLVE,
            format_func=lambda i: f"#{i} {by_id[i].kind} {by_id[i].subject}".strip(),
        )
        press.button("Resolve", key=f"{P}_resolve", icon=":material/done_all:", on_click=_resolve)
    else:
        st.caption(
            f"Operators resolve alerts once they have acted on them; as a {actor.role} you "
            "can follow them here."
        )

# ------------------------------------------------------------------------ windows

with st.expander("Latest windows"):
    latest = cache.monitoring.latest_results(m.name)
    if not latest:
        st.caption("The worker has computed no window of this model yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "window": r.window_start,
                        "version": r.version,
                        "variant": r.variant,
                        "kind": r.kind,
                        "status": r.status.replace("_", " ")
                        + (" (provisional)" if r.provisional else ""),
                        "requests": r.rows,
                        "figures": monitor.summarise(r),
                        "computed": r.computed_at,
                    }
                    for r in latest
                ]
            ),
            hide_index=True,
            column_config={
                "window": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                "computed": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            },
        )
