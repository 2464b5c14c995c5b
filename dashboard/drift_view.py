"""The body both drift pages share: headline, drift over time, the latest result's columns,
reference against current distributions, and Evidently's report on demand.

The pages differ only in what they say (what the rows are, which reference, which tests), so
they pass that text in and :func:`page` does the rest: the sign-in, the model picker, the
explanations shown while there is nothing to draw, and the results themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from core.errors import CoreError
from core.monitoring import drift, drift_store
from core.monitoring.drift_store import DriftRecord
from core.registry.entities import ModelInfo
from dashboard import cache, monitor_charts, session, ui

TOP = 6  # columns drawn by default: the most drifted of the latest result
# How to get a model that serves traffic: the same advice on both pages while none is registered.
GET_STARTED = (
    "Bootstrap a demo with `python -m core demo`, or train and promote a model and replay "
    "traffic through it with `python -m core simulate NAME`."
)


def _ranked(record: DriftRecord) -> list[str]:
    """Columns of a result, most drifted first."""
    return sorted(record.columns, key=lambda c: -float(record.columns[c]["score"]))


def _columns_table(record: DriftRecord) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "column": c,
                "drifted": bool(d["drifted"]),
                "method": d["method"],
                "score": float(d["score"]),
                "threshold": float(d["threshold"]),
            }
            for c, d in record.columns.items()
        ]
    ).sort_values("score", ascending=False, kind="stable")


def _keep(key: str, options: list, default: object) -> None:
    """A widget's remembered choice, reset when it is no longer offered."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def page(
    *,
    title: str,
    kind: str,
    prefix: str,
    no_model: str,
    no_result: Callable[[str], str],
    describe_latest: Callable[[DriftRecord], str],
    methods: str,
    reference: Callable[[str], str] = str,
) -> None:
    """A whole drift page for results of one ``kind``; ``prefix`` starts its state keys.

    ``no_model`` says what the page will show while no model is registered (:data:`GET_STARTED`
    follows it); ``no_result``, given the chosen model's name, says it while that model has no
    stored result of this kind yet, and how to get one: a first visit is never a blank page.
    """
    session.actor()
    st.title(title)
    models = cache.models()
    if not models:
        ui.empty_state(f"{no_model}\n\n{GET_STARTED}")
        st.stop()
    model = ui.pick_model(f"{prefix}_model", models)
    records, frame = cache.monitoring.drift_history(model.name, kind)
    if not records:
        ui.empty_state(no_result(model.name))
        st.stop()
    _show(
        kind=kind,
        prefix=prefix,
        model=model,
        records=records,
        frame=frame,
        describe_latest=describe_latest,
        methods=methods,
        reference=reference,
    )


def _show(
    *,
    kind: str,
    prefix: str,
    model: ModelInfo,
    records: list[DriftRecord],
    frame: pd.DataFrame,
    describe_latest: Callable[[DriftRecord], str],
    methods: str,
    reference: Callable[[str], str] = str,
) -> None:
    """Draw a model's stored drift results of one kind (``records`` oldest first, not empty)."""
    latest = records[-1]
    previous = records[-2] if len(records) > 1 else None
    cols = st.columns(4)
    cols[0].metric(
        "Drift share (latest)",
        f"{latest.drift_share:.0%}",
        delta=None if previous is None else f"{latest.drift_share - previous.drift_share:+.0%}",
        delta_color="inverse",
    )
    cols[1].metric("Drifted columns", f"{len(latest.drifted_columns)} of {len(latest.columns)}")
    cols[2].metric("Dataset drift", "yes" if latest.dataset_drift else "no")
    cols[3].metric("Results", f"{len(records):,}")
    st.caption(
        f"Latest window {ui.when(latest.window_start)} – {ui.when(latest.window_end)}, "
        + describe_latest(latest)
    )

    # -------------------------------------------------------------------- over time

    st.subheader("Drift over time", anchor=False)
    columns = list(latest.columns)
    features_key = f"{prefix}_features_{model.name}"
    if features_key not in st.session_state:
        st.session_state[features_key] = _ranked(latest)[:TOP]
    else:
        st.session_state[features_key] = [c for c in st.session_state[features_key] if c in columns]
    features = st.multiselect(
        "Columns",
        columns,
        key=features_key,
        help="By default the columns that drift most in the latest result.",
    )
    threshold = float(next(iter(latest.columns.values()))["threshold"])
    limits = cache.monitoring.alert_thresholds(model.name)
    began = drift_store.onset(records, limits)
    if began is not None:
        st.caption(f"The current drift episode began with the window of {ui.when(began)}.")
    st.plotly_chart(
        monitor_charts.drift_over_time(
            frame,
            features,
            threshold=threshold,
            dataset_share=drift.DRIFT_SHARE,
            alert_share=limits["drift_share"],
            onset=began,
        ),
        key=f"{prefix}_over_time",
    )

    # -------------------------------------------------------------------- latest columns

    st.subheader("Columns of the latest result", anchor=False)
    st.dataframe(
        _columns_table(latest),
        hide_index=True,
        column_config={
            "score": st.column_config.NumberColumn(format="%.4f"),
            "threshold": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    st.caption(methods)

    # -------------------------------------------------------------------- distributions

    st.subheader("Reference against current", anchor=False)
    ids = [r.id for r in reversed(records)]
    by_id = {r.id: r for r in records}
    result_key, column_key = f"{prefix}_result", f"{prefix}_column"
    _keep(result_key, ids, ids[0])
    left, right = st.columns(2)
    chosen_id = left.selectbox(
        "Result",
        ids,
        key=result_key,
        format_func=lambda i: (
            f"{by_id[i].window_end:%Y-%m-%d %H:%M} · drift share {by_id[i].drift_share:.0%} · #{i}"
        ),
    )
    chosen = cache.monitoring.drift_result(chosen_id)
    ranked = _ranked(chosen)
    _keep(column_key, ranked, ranked[0])
    column = right.selectbox("Column", ranked, key=column_key, help="Most drifted first.")
    summary = chosen.summaries.get(column)
    if summary:
        st.plotly_chart(monitor_charts.distribution(summary, column), key=f"{prefix}_distribution")
    else:
        ui.empty_state("This result stored no histogram of that column.")
    d = chosen.columns[column]
    st.caption(
        f"{ui.md(column)}: {d['method']} score {float(d['score']):.4f} against threshold "
        f"{float(d['threshold']):g}: {'drifted' if d['drifted'] else 'no drift'}."
    )
    ui.facts(
        [
            ("Window", f"{ui.when(chosen.window_start)} – {ui.when(chosen.window_end)}"),
            ("Version", chosen.version or "—"),
            ("Reference", reference(chosen.reference)),
            ("Rows compared", f"{chosen.n_reference:,} reference · {chosen.n_current:,} current"),
        ]
    )
    with st.expander("Sampling rule"):
        st.text(chosen.sampling or "all rows")

    # -------------------------------------------------------------------- Evidently report

    st.subheader("Evidently report", anchor=False)
    reports_key = f"{prefix}_reports"  # result id -> path of its stored report, in this session
    reports: dict[int, str] = st.session_state.setdefault(reports_key, {})
    path = reports.get(chosen.id)
    if path is None:
        stored = chosen.report_path is not None
        st.caption(
            "Evidently's own report of this result: every column's distributions and test, "
            + (
                "stored when someone first asked for it."
                if stored
                else "computed from the logged requests of the window (a few seconds) and stored."
            )
        )
        if st.button(
            "Open the report" if stored else "Compute the report",
            key=f"{prefix}_report",
            icon=":material/description:",
        ):
            with st.status("Preparing Evidently's report…", expanded=False) as status:
                try:
                    path = str(cache.monitoring.drift_report(chosen.id))
                except CoreError as exc:
                    status.update(label="The report could not be made", state="error")
                    ui.error(exc)
                else:
                    reports[chosen.id] = path
                    status.update(label="The report is ready", state="complete")
    if path is not None:
        report = Path(path)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model.name)
        st.download_button(
            "Download the report (HTML)",
            data=report.read_bytes,
            file_name=f"{safe}-{kind}-drift-{chosen.id}.html",
            mime="text/html",
            key=f"{prefix}_download",
            on_click="ignore",
            icon=":material/download:",
        )
        if st.toggle("Show the report here", key=f"{prefix}_show_report"):
            # Our own generated artifact (self-contained HTML with its scripts), not user text.
            st.iframe(report, height=900)
