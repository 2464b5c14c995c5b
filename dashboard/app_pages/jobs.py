"""Jobs: retraining schedules, "run now", and the history of training runs with their logs.

The page never runs a scheduler or a training. Its buttons write rows through ``core`` (a
schedule, a queued run) and the worker (``python -m jobs.worker``) acts on them within
seconds; the page says so when no worker is running. Schedules, runs and the worker status
are read fresh on every run (they change by the second and each read is one small query), so
nothing here goes through the registry caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core import registry
from core.db import utcnow
from core.db.tables import POLICIES
from core.errors import BadInput, CoreError
from core.inputs import parse_key_values
from core.monitoring import monitor
from core.retraining import leader, queue, runs, schedules
from core.retraining.runs import RunInfo
from core.retraining.schedules import ScheduleInfo
from dashboard import cache, session, ui

actor = session.actor()
st.title("Jobs")
ui.show_flash()
can_operate = actor.can("operate")
NEW = "(new schedule)"
STATUS_COLOURS = {"queued": "gray", "running": "blue", "succeeded": "green", "failed": "red"}

# ------------------------------------------------------------------------ the worker

worker = leader.current_worker()
worker_alive = worker is not None and worker.alive(utcnow())
if worker is not None and worker_alive:  # (the None test is for the type checker)
    st.caption(
        f"Worker **{ui.md(worker.holder)}** runs the schedule (leading since "
        f"{ui.when(worker.acquired_at)}, last heartbeat {ui.ago(worker.heartbeat_at)})."
    )
else:
    st.warning(
        "No worker is running: schedules do not fire and queued runs wait. Start one beside "
        "the dashboard with `python -m jobs.worker`.",
        icon=":material/warning:",
    )

# ------------------------------------------------------------------------ monitoring


def _monitoring_failures() -> None:
    """Windows the worker's monitoring job could not compute (it retries them)."""
    failed = monitor.failures(limit=20)
    if not failed:
        return
    st.warning(
        f"The monitoring job failed on {len(failed)} recent window result"
        f"{'s' if len(failed) != 1 else ''}; the worker retries each up to "
        f"{monitor.MAX_ATTEMPTS} times, and the other models' windows go on.",
        icon=":material/monitor_heart:",
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": f"{r.model}@{r.version}",
                    "variant": r.variant,
                    "kind": r.kind,
                    "window": r.window_start,
                    "attempts": r.attempts,
                    "error": r.message,
                }
                for r in failed
            ]
        ),
        hide_index=True,
        column_config={"window": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )


_monitoring_failures()

# ------------------------------------------------------------------------ schedules

st.subheader("Schedules", anchor=False)
items = schedules.list_schedules()


def _state(s: ScheduleInfo) -> str:
    if s.paused:
        return "paused"
    return "active" if s.in_sync and worker_alive else "waiting for the worker"


if items:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": s.model,
                    "family": s.family,
                    "when (UTC)": s.when,
                    "dataset": s.dataset,
                    "policy": s.policy
                    + (f" (+{s.margin:g} {s.metric})" if s.policy == "production" else ""),
                    "hyperparameters": ", ".join(f"{k}={v}" for k, v in s.params.items()),
                    "state": _state(s),
                    # Only the worker knows the next fire; without one nothing fires.
                    "next run": s.next_run_at
                    if s.in_sync and not s.paused and worker_alive
                    else None,
                    "changed": f"{ui.when(s.updated_at)} by {s.updated_by}",
                }
                for s in items
            ]
        ),
        hide_index=True,
        key="jobs_schedules",
        column_config={
            "next run": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        },
    )
else:
    ui.empty_state(
        "No model retrains on a schedule yet. A schedule retrains a model every N seconds or "
        "on a cron expression, on a dataset's latest (or a fixed) version, and keeps the new "
        "version a candidate, moves it to staging when its gates pass, or to production when "
        "it beats production by a margin."
    )

by_model = {s.model: s for s in items}


def _pick() -> str:
    return str(st.session_state.get("jobs_model") or "")


def _run_now() -> str:
    model = _pick()
    reason = str(st.session_state.get("jobs_reason", "")).strip() or "run now from the dashboard"
    result = queue.queue_retrain(model, "manual", reason, actor=session.acting())
    # The details below follow the run just asked for, not the one looked at before, and the
    # history's filters are widened if they would hide it.
    state = st.session_state
    state["jobs_run"] = result.run.id
    if state.get("jobs_runs_model") not in (None, "(all)", model):
        state["jobs_runs_model"] = "(all)"
    if state.get("jobs_runs_status") not in (None, "(all)", result.run.status):
        state["jobs_runs_status"] = "(all)"
    return f"{model}: {result.note}. The worker picks it up within seconds."


def _toggle() -> str:
    model = _pick()
    if schedules.get_schedule(model).paused:  # as it is now, not as the page showed it
        schedules.resume(actor=session.acting(), model=model)
        return f"{model}: schedule resumed."
    schedules.pause(actor=session.acting(), model=model)
    return f"{model}: schedule paused."


def _delete() -> str:
    model = _pick()
    schedules.delete_schedule(actor=session.acting(), model=model)
    return f"{model}: schedule deleted."


if not can_operate:
    st.info(
        f"Your role ({actor.role}) can follow schedules and runs. Operators and admins edit "
        "schedules, pause them and queue runs."
    )
else:
    model_names = sorted({m.name for m in cache.models()} | set(by_model))
    with st.container(border=True):
        st.markdown("**Run now, pause, resume**")
        if not model_names:
            st.caption("No model yet: create a schedule below, or train one first.")
        else:
            c: Sequence[DeltaGenerator] = st.columns([2, 3], vertical_alignment="bottom")
            c[0].selectbox("Model", model_names, key="jobs_model")
            c[1].text_input(
                "Reason", key="jobs_reason", placeholder="why retrain now (kept with the run)"
            )
            chosen = by_model.get(_pick())
            b = st.columns([1, 1, 1, 3])
            b[0].button(
                "Run now",
                key="jobs_run_now",
                type="primary",
                icon=":material/play_arrow:",
                on_click=ui.act,
                args=(_run_now,),
                help="Queue a manual run; it uses the model's schedule if it has one.",
            )
            b[1].button(
                "Resume" if chosen is not None and chosen.paused else "Pause",
                key="jobs_toggle",
                icon=":material/play_circle:"
                if chosen is not None and chosen.paused
                else ":material/pause_circle:",
                disabled=chosen is None,
                on_click=ui.act,
                args=(_toggle,),
            )
            b[2].button(
                "Delete",
                key="jobs_delete",
                icon=":material/delete:",
                disabled=chosen is None,
                on_click=ui.act,
                args=(_delete,),
            )

    # -------------------------------------------------------------- the schedule form

    def _load_form() -> None:
        """Fill the form from the schedule chosen for editing (or empty it for a new one)."""
        state = st.session_state
        s = by_model.get(state.get("jobs_edit", NEW))
        state["jobs_f_model"] = "" if s is None else s.model
        state["jobs_f_family"] = "(the model's)" if s is None else s.family
        state["jobs_f_kind"] = "cron" if s is not None and s.cron else "interval"
        state["jobs_f_every"] = 86400 if s is None or s.every_s is None else s.every_s
        state["jobs_f_cron"] = "0 3 * * *" if s is None or not s.cron else s.cron
        state["jobs_f_dataset"] = "" if s is None else s.dataset
        state["jobs_f_policy"] = "candidate" if s is None else s.policy
        state["jobs_f_margin"] = 0.0 if s is None else s.margin
        state["jobs_f_params"] = (
            "" if s is None else "\n".join(f"{k}={v}" for k, v in s.params.items())
        )

    def _save() -> str:
        state = st.session_state
        model = str(state.get("jobs_f_model", "")).strip()
        if not model:
            raise BadInput("give the model's name")
        family = state.get("jobs_f_family")
        cron = every = None
        if state.get("jobs_f_kind") == "cron":
            cron = str(state.get("jobs_f_cron", ""))
        else:
            every = int(state.get("jobs_f_every", 0))
        dataset = str(state.get("jobs_f_dataset") or "").strip()
        info = schedules.set_schedule(
            actor=session.acting(),
            model=model,
            cron=cron,
            every_s=every,
            dataset=dataset or None,
            family=None if family == "(the model's)" else family,
            params=parse_key_values(
                line for line in str(state.get("jobs_f_params", "")).splitlines() if line.strip()
            ),
            policy=state.get("jobs_f_policy"),
            margin=float(state.get("jobs_f_margin", 0.0)),
        )
        state["jobs_edit"] = info.model
        return f"{info.model}: {info.when}, revision {info.revision}. The worker applies it."

    if st.session_state.get("jobs_edit") not in [NEW, *by_model]:
        st.session_state["jobs_edit"] = NEW
        _load_form()

    with st.expander("Create or edit a schedule", expanded=not items):
        st.selectbox("Schedule", [NEW, *by_model], key="jobs_edit", on_change=_load_form)
        datasets = cache.dataset_list()
        names = sorted({d.name for d in datasets})
        with st.form("jobs_form", border=False):
            c = st.columns(2)
            c[0].text_input("Model", key="jobs_f_model", help="A registered model, or a new name.")
            c[1].selectbox("Family", ["(the model's)", *registry.FAMILIES], key="jobs_f_family")
            c = st.columns([1, 1, 2])
            c[0].radio("When", ["interval", "cron"], key="jobs_f_kind", horizontal=True)
            c[1].number_input("Every (seconds)", min_value=1, step=60, key="jobs_f_every")
            c[2].text_input(
                "Cron (UTC)",
                key="jobs_f_cron",
                help="minute hour day-of-month month day-of-week, e.g. 0 3 * * * for 03:00 "
                "daily or 0 6 * * mon-fri for 06:00 on weekdays",
            )
            c = st.columns([2, 1, 1])
            c[0].text_input(
                "Dataset",
                key="jobs_f_dataset",
                placeholder=", ".join(names[:3]) or "NAME or NAME@VERSION",
                help="NAME trains on its latest version at run time, NAME@VERSION on that "
                "version. Empty: the dataset the model was last trained on. Known: "
                + (", ".join(names) or "none yet"),
            )
            c[1].selectbox("Policy", POLICIES, key="jobs_f_policy")
            c[2].number_input(
                "Margin",
                min_value=0.0,
                step=0.005,
                format="%.4f",
                key="jobs_f_margin",
                help="The production policy promotes only a version that beats production "
                "by at least this much on the comparison metric (ndcg@5).",
            )
            st.text_area(
                "Hyperparameters",
                key="jobs_f_params",
                height=80,
                placeholder="one KEY=VALUE per line, e.g. epochs=20",
            )
            st.form_submit_button("Save schedule", type="primary", on_click=ui.act, args=(_save,))

# ------------------------------------------------------------------------ runs

st.subheader("Runs", anchor=False)


def _status(run: RunInfo) -> str:
    return f":{STATUS_COLOURS.get(run.status, 'gray')}-badge[{ui.md(run.status)}]"


def _details(run: RunInfo) -> None:
    st.markdown(
        f"**Run #{run.id}** of **{ui.md(run.model)}** {_status(run)} · {ui.md(run.trigger)}, "
        f"requested by {ui.md(run.requested_by)}" + (f": {ui.md(run.reason)}" if run.reason else "")
    )
    duration = "—" if run.duration_s is None else f"{run.duration_s:.1f} s"
    ui.facts(
        [
            ("Queued", ui.when(run.queued_at)),
            ("Started", ui.when(run.started_at)),
            ("Duration", duration),
            ("Peak memory", "—" if run.peak_rss_mb is None else f"{run.peak_rss_mb:,.0f} MB"),
            ("Version", run.version or "—"),
            ("Dataset", run.dataset or run.dataset_ref),
            ("Policy", run.policy),
            ("Promoted to", run.promoted_to or "—"),
            ("Worker", run.worker_id or "—"),
        ]
    )
    if run.status == "running" and run.heartbeat_at is not None:
        st.caption(f"Last heartbeat {ui.ago(run.heartbeat_at)}.")
    if run.error:
        st.error(ui.md(run.error))
    elif run.outcome:
        st.success(ui.md(run.outcome))
    for gate in run.gates:
        (st.success if gate.get("passed") else st.warning)(
            f"**{ui.md(gate.get('name'))}** gate: {ui.md(gate.get('detail', ''))}"
        )
    numbers = {k: v for k, v in run.metrics.items() if isinstance(v, int | float)}
    if numbers:
        st.dataframe(pd.DataFrame([numbers]), hide_index=True, key=f"jobs_metrics_{run.id}")
    log = run.log or "(no log yet)"
    st.code(log, language=None, height=400 if log.count("\n") > 20 else "content")


def _history() -> None:
    c = st.columns([2, 2, 1])
    model = c[0].selectbox("Model", ["(all)", *sorted(by_model)], key="jobs_runs_model")
    status = c[1].selectbox("Status", ["(all)", *runs.STATUSES], key="jobs_runs_status")
    c[2].button("Refresh", key="jobs_runs_refresh", icon=":material/refresh:")
    try:
        found = runs.list_runs(
            model=None if model == "(all)" else model,
            status=None if status == "(all)" else status,
            limit=200,
        )
    except CoreError as exc:
        ui.error(exc)
        return
    if not found:
        ui.empty_state(
            'No training run yet. Scheduled fires, "Run now" and drift alerts each create a '
            "run here; the worker trains it and records its version, metrics, gates and log."
        )
        return
    rows: list[dict[str, Any]] = [
        {
            "run": r.id,
            "model": r.model,
            "trigger": r.trigger,
            "status": r.status,
            "queued": r.queued_at,
            "duration": "" if r.duration_s is None else f"{r.duration_s:.1f} s",
            "peak memory (MB)": r.peak_rss_mb,
            "version": r.version or "",
            "promoted to": r.promoted_to or "",
            "outcome": r.error or r.outcome,
        }
        for r in found
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="jobs_runs",
        column_config={"queued": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")},
    )
    ids = [r.id for r in found]
    if st.session_state.get("jobs_run") not in ids:
        # What is training now is what one most likely came to look at.
        st.session_state["jobs_run"] = next((r.id for r in found if r.status == "running"), ids[0])
    chosen = st.selectbox(
        "Run",
        ids,
        key="jobs_run",
        format_func=lambda i: next(
            f"#{r.id} · {r.model} · {r.trigger} · {r.status}" for r in found if r.id == i
        ),
    )
    try:
        run = runs.get_run(int(chosen))
    except CoreError as exc:
        ui.error(exc)
        return
    with st.container(border=True):
        _details(run)


active = runs.list_runs(status="running", limit=1) or runs.list_runs(status="queued", limit=1)
# While something is queued or running, the history follows it live.
st.fragment(_history, run_every=5 if active else None)()
