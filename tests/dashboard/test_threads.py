"""Pages that must keep the thread: what a user chose or asked for is what the page shows."""

from __future__ import annotations

from core.accounts.auth import SYSTEM
from core.retraining import queue, runs, schedules
from tests.dashboard.conftest import assert_clean, open_page, sign_in
from tests.fixtures.dashboard import MODEL

JOBS = "app_pages/jobs.py"


def test_run_now_shows_the_run_it_queued_not_the_one_looked_at_before(populated) -> None:
    schedules.set_schedule(
        actor=SYSTEM,
        model=MODEL,
        family="svd",
        cron="0 3 1 1 *",
        dataset=populated.dataset.name,
    )
    earlier = queue.queue_retrain(MODEL, "manual", "an earlier run", actor=SYSTEM).run
    assert runs.claim(earlier.id, worker_id="w1") is not None
    runs.finish(earlier.id, worker_id="w1", status="failed", error="boom")

    at = sign_in("olga")
    at.switch_page(JOBS).run()
    assert not at.exception
    assert at.selectbox(key="jobs_run").value == earlier.id
    # Looking only at failed runs, as one does after a failure, then asking for a new run.
    at.selectbox(key="jobs_runs_status").select("failed").run()
    at.selectbox(key="jobs_model").select(MODEL)
    at.text_input(key="jobs_reason").input("try again")
    at.button(key="jobs_run_now").click().run()
    assert not at.exception
    queued = runs.list_runs(model=MODEL, status="queued")
    assert len(queued) == 1
    assert at.selectbox(key="jobs_run").value == queued[0].id
    details = " ".join(m.value for m in at.markdown)
    assert f"Run #{queued[0].id}" in details and f"Run #{earlier.id}" not in details


def test_the_models_detail_follows_the_filters(populated) -> None:
    at = sign_in("victor")
    open_page(at, "models", model=None)
    open_label = f"{MODEL}@{populated.candidate}"
    at.selectbox(key="models_open").select(open_label).run()
    assert at.selectbox(key="models_open").value == open_label
    at.selectbox(key="models_stage").select("production").run()
    assert_clean(at)
    shown = at.selectbox(key="models_open")
    assert shown.value != open_label, "a candidate is not shown under a production filter"
    assert all(
        o.endswith(("@" + populated.production, "@" + populated.baseline)) or "@" in o
        for o in shown.options
    )
    assert open_label not in shown.options


def test_compare_keeps_its_selection_and_metrics_on_revisit(populated) -> None:
    at = sign_in("victor")
    open_page(at, "compare")
    chosen = [populated.candidate, populated.previous_production]
    at.multiselect(key="compare_versions").set_value(chosen).run()
    assert_clean(at)
    open_page(at, "overview", model=None)
    open_page(at, "compare")
    assert_clean(at)
    assert at.multiselect(key="compare_versions").value == chosen
    metrics = [d.value for d in at.dataframe if "ndcg@10" in d.value.index]
    assert metrics, "the metrics are there"
    assert list(metrics[0].columns)[:2] == [f"{MODEL}@{n}" for n in chosen]


def test_after_the_warm_up_first_visits_compute_nothing(populated, monkeypatch) -> None:
    """The start-up warm-up fills what Preview, Compare and Audit show by default: their first
    visits then rank nothing (the expensive part of the 11–13 s first visits)."""
    from core.review import audit_review, comparison
    from core.serving import predict
    from dashboard.cache import warm_up

    at = sign_in("ana")
    timings: dict[str, float] = {}
    warm_up._warm(timings)
    assert "total" in timings and "views" in timings

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed on a first visit after the warm-up")

    monkeypatch.setattr(comparison, "compare_lists", refuse)
    monkeypatch.setattr(audit_review, "review", refuse)
    monkeypatch.setattr(predict, "recommend", refuse)
    monkeypatch.setattr(predict, "predict_categories", refuse)
    for page in ("compare", "audit", "preview"):
        open_page(at, page)
        assert_clean(at)


def test_the_served_warm_up_sets_the_start_up_heap_aside_from_the_collector(
    populated, monkeypatch
) -> None:
    """Streamlit collects garbage after every page run: over the start-up heap (TensorFlow,
    pandas, Plotly, Evidently) that took 0.25–0.35 s of every page. The served warm-up ends by
    collecting once and freezing what is left, so later collections skip it."""
    import gc

    from dashboard.cache import warm_up

    calls: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append("collect") or 0)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    warm_up.start_warm_up.clear()
    warm_up.start_warm_up()  # the thread the served app starts at its first run
    timings = warm_up.warm_up_done(timeout=120)
    assert timings is not None, "the warm-up finished"
    assert "heap frozen" in timings and "views" in timings
    assert calls[-2:] == ["collect", "freeze"], "garbage collected first, then the rest frozen"
    warm_up.start_warm_up.clear()
