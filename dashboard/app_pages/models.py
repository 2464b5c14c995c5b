"""Models: every version in a searchable, paginated table, and one version in detail."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pandas as pd
import streamlit as st

from core import registry
from core.errors import CoreError
from core.registry.entities import VersionInfo
from core.review.comparison import numeric_metrics
from dashboard import cache, charts, session, ui

session.actor()
st.title("Models")
ui.show_flash()

models = cache.models()
if not models:
    ui.empty_state(
        "No versions yet. Every registered version appears here, searchable by model, "
        "version, description or author, with its lineage, artifact integrity, metrics, "
        "training curves and stage history."
    )
    st.stop()

ALL = "all"
TABLE_METRICS = ("ndcg@10", "precision@5", "rmse")  # shown as columns when recorded
PAGE_SIZES = (25, 50, 100, 200)


def _reset_page() -> None:
    st.session_state["models_page"] = 1


# ------------------------------------------------------------------------ filters

f = st.columns([3, 2, 2, 2, 1])
search = f[0].text_input(
    "Search",
    key="models_search",
    placeholder="model, version, description or author",
    on_change=_reset_page,
)
model_filter = f[1].selectbox(
    "Model", [ALL, *(m.name for m in models)], key="models_model", on_change=_reset_page
)
stage_filter = f[2].selectbox(
    "Stage", [ALL, *registry.STAGES], key="models_stage", on_change=_reset_page
)
family_filter = f[3].selectbox(
    "Family",
    [ALL, *sorted({m.family for m in models})],
    key="models_family",
    on_change=_reset_page,
)
page_size = f[4].selectbox(
    "Rows", PAGE_SIZES, index=1, key="models_page_size", on_change=_reset_page
)

filters = {
    "model": None if model_filter == ALL else model_filter,
    "stage": None if stage_filter == ALL else stage_filter,
    "family": None if family_filter == ALL else family_filter,
    "search": search.strip() or None,
}
page_no = int(st.session_state.get("models_page", 1))
result = cache.versions(**filters, page=page_no, page_size=page_size)
if page_no > result.pages:  # the filters shrank the result under the current page
    st.session_state["models_page"] = page_no = result.pages
    result = cache.versions(**filters, page=page_no, page_size=page_size)

# ------------------------------------------------------------------------ table


def _table(items: list[VersionInfo]) -> pd.DataFrame:
    counts = Counter(k for v in items for k in numeric_metrics(v.metrics))
    common = [m for m in TABLE_METRICS if m in counts] or [m for m, _ in counts.most_common(3)]
    rows = []
    for v in items:
        metrics = numeric_metrics(v.metrics)
        rows.append(
            {
                "model": v.model,
                "version": v.version,
                "stage": v.stage,
                "family": v.family,
                **{m: metrics.get(m) for m in common},
                "dataset": v.dataset.label if v.dataset else "",
                "registered": v.created_at,
                "by": v.created_by,
                "description": v.description,
            }
        )
    return pd.DataFrame(rows)


if not result.items:
    ui.empty_state("No version matches these filters.")
    st.stop()

first = (result.page - 1) * result.page_size + 1
st.caption(
    f"Versions {first}–{first + len(result.items) - 1} of {result.total}, newest first. "
    "Select a row to open the version."
)
selection = st.dataframe(
    _table(result.items),
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="models_table",
    column_config={
        "registered": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        "stage": st.column_config.TextColumn(width="small"),
    },
)
nav = st.columns([1.4, 1.2, 2, 5], vertical_alignment="center")
nav[0].button(
    "Previous",
    key="models_prev",
    icon=":material/chevron_left:",
    disabled=result.page <= 1,
    on_click=lambda: st.session_state.update(models_page=max(1, page_no - 1)),
)
nav[1].button(
    "Next",
    key="models_next",
    icon=":material/chevron_right:",
    disabled=result.page >= result.pages,
    on_click=lambda: st.session_state.update(models_page=min(result.pages, page_no + 1)),
)
nav[2].markdown(f"Page **{result.page}** of {result.pages}")

# ------------------------------------------------------------------------ detail

labels = [v.label for v in result.items]
rows = list(selection.selection.rows) if selection is not None else []
if rows and rows != st.session_state.get("models_table_seen"):
    # Only a new click on a row opens it; the selectbox below may have moved on since.
    st.session_state["models_open"] = labels[rows[0]]
st.session_state["models_table_seen"] = rows


def _passes_filters(label: str) -> bool:
    """Whether a version off this page still matches the filters (a linked one may)."""
    name, _, number = label.partition("@")
    if filters["model"] not in (None, name):
        return False
    found = cache.versions(
        model=name,
        stage=filters["stage"],
        family=filters["family"],
        search=filters["search"],
        page_size=500,
    )
    return any(v.version == number for v in found.items)


wanted = st.session_state.get("models_open")
if wanted is None and "model" in st.query_params and "version" in st.query_params:
    wanted = f"{st.query_params['model']}@{st.query_params['version']}"
if wanted is not None and wanted not in labels and not _passes_filters(wanted):
    # The detail never shows a version the filters exclude: it follows the table.
    st.caption(f"{ui.md(wanted)} does not match these filters; showing the first row instead.")
    wanted = None
    st.session_state.pop("models_open", None)
options = labels if wanted in labels or wanted is None else [wanted, *labels]
if st.session_state.get("models_open") not in options:
    st.session_state["models_open"] = wanted if wanted in options else options[0]
chosen = st.selectbox("Version", options, key="models_open")
model_name, _, number = chosen.partition("@")
try:
    v = cache.version(model_name, number)
except CoreError as exc:
    ui.error(exc)
    st.stop()
st.query_params.update(model=v.model, version=v.version)


def _overview(v: VersionInfo) -> None:
    ui.facts(
        [
            ("Stage", v.stage),
            ("Family", v.family),
            ("Registered", ui.when(v.created_at)),
            ("By", v.created_by),
        ]
    )
    if v.description:
        st.text(v.description)
    left, right = st.columns(2)
    with left:
        st.markdown("**Metrics**")
        metrics = numeric_metrics(v.metrics)
        if metrics:
            st.dataframe(
                pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())}),
                hide_index=True,
                column_config={"value": st.column_config.NumberColumn(format="%.4f")},
            )
        else:
            st.caption("No metrics recorded.")
    with right:
        st.markdown("**Hyperparameters**")
        if v.hyperparameters:
            st.json(v.hyperparameters, expanded=True)
        else:
            st.caption("No hyperparameters recorded.")


def _lineage(v: VersionInfo) -> None:
    meta = v.metadata
    rows = [
        ("dataset", v.dataset.label if v.dataset else "none recorded"),
        ("dataset SHA-256", v.dataset.sha256 if v.dataset else "—"),
        ("training file", meta.get("training_dataset") or "—"),
        (
            "parent version",
            f"{v.parent[0]}@{v.parent[1]}" if v.parent else "none (trained from scratch)",
        ),
        ("code revision", meta.get("code_revision") or "unknown"),
        ("Python", meta.get("python_version") or "unknown"),
        (
            "framework",
            " ".join(str(x) for x in (meta.get("framework"), meta.get("framework_version")) if x)
            or "—",
        ),
    ]
    st.dataframe(pd.DataFrame(rows, columns=["", "value"]), hide_index=True)
    libraries = meta.get("libraries") or {}
    st.markdown("**Library versions that wrote the files**")
    if libraries:
        st.dataframe(
            pd.DataFrame(sorted(libraries.items()), columns=["library", "version"]),
            hide_index=True,
        )
    else:
        st.caption("No library versions recorded.")


def _artifacts(v: VersionInfo) -> None:
    st.caption(f"Folder `{v.artifact_dir}` under the artifact store.")
    status = cache.artifact_status(v)
    frame = pd.DataFrame(
        [
            {"file": name, "status": status.get(name, "?"), "SHA-256": sha}
            for name, sha in sorted(v.files.items())
        ]
    )
    bad = [name for name, s in status.items() if s != "ok"]
    if not v.files:
        st.warning("This version records no artifact files.")
    elif bad:
        st.error(
            f"{len(bad)} of {len(v.files)} files are missing or modified; promotion is "
            "refused until they are restored."
        )
    else:
        st.success(f"All {len(v.files)} files match the SHA-256 the registry recorded.")
    st.dataframe(frame, hide_index=True)


def _training(v: VersionInfo) -> None:
    history = v.metadata.get("history") or {}
    series = {k: vals for k, vals in history.items() if isinstance(vals, list) and vals}
    if series:
        st.plotly_chart(charts.loss_curves(series), key="models_loss")
    else:
        ui.empty_state(
            "This version recorded no training history (families trained in one step, like "
            "the popularity baseline, have none)."
        )
    duration = v.metadata.get("duration_s") or v.metrics.get("duration_s")
    if isinstance(duration, int | float):
        st.caption(f"Training took {duration:.1f} s.")


def _timeline(v: VersionInfo) -> None:
    events = [e for e in cache.timeline(v.model) if e.version == v.version]
    if not events:
        st.caption("No stage events recorded.")
        return
    ui.stage_events(events, key="models_stage_history", with_version=False)


def _verdicts(v: VersionInfo) -> None:
    found = cache.verdicts(v.model, v.version)
    if not found:
        st.caption("No audit verdict yet. Auditors record one on the Audit page.")
        return
    ui.verdicts(found)


def _metadata(v: VersionInfo) -> None:
    st.json(v.metadata, expanded=False)


# Each tab's label beside what draws it, in the order the tabs appear.
TABS: dict[str, Callable[[VersionInfo], None]] = {
    "Overview": _overview,
    "Lineage": _lineage,
    "Artifacts": _artifacts,
    "Training": _training,
    "Stage history": _timeline,
    "Audit": _verdicts,
    "metadata.json": _metadata,
}

st.subheader(f"{ui.md(v.label)} {ui.badge(v.stage)}", anchor=False)
tabs = st.tabs(
    list(TABS),
    key="models_tab",
    on_change="rerun",  # the open tab stays open from one version to the next
)
for tab, draw in zip(tabs, TABS.values(), strict=True):
    with tab:
        draw(v)
