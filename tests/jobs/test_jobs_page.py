"""The Jobs page under AppTest: it writes schedules and queued runs; a real worker runs them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.accounts.auth import SYSTEM
from core.cli import main
from core.errors import BadInput
from core.inputs import parse_key_values
from core.retraining import runs, schedules
from tests.conftest import RegistryEnv
from tests.dashboard.conftest import assert_clean, plain, sign_in, submit
from tests.fixtures.dashboard import create_accounts
from tests.fixtures.models import monitored_model
from tests.fixtures.workers import Workers, ingest, wait_for

JOBS = "app_pages/jobs.py"


@pytest.fixture
def accounts(sqlite_backend: RegistryEnv) -> Iterator[RegistryEnv]:
    st.cache_data.clear()
    create_accounts()
    yield sqlite_backend
    st.cache_data.clear()


def open_jobs(user: str) -> AppTest:
    at = sign_in(user)
    at.switch_page(JOBS).run()
    assert_clean(at)
    assert at.title[0].value == "Jobs"
    return at


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    return " ".join(parts).replace("\\", "")


def test_a_viewer_follows_but_cannot_change(accounts: RegistryEnv) -> None:
    at = open_jobs("victor")
    assert "No worker is running" in _text(at)
    assert "can follow schedules and runs" in _text(at)
    assert not [b for b in at.button if b.key in ("jobs_run_now", "jobs_toggle")]
    assert "No training run yet" in _text(at)


def test_an_operator_creates_a_schedule_runs_it_now_and_pauses_it(accounts) -> None:
    dataset = ingest(accounts.root)
    at = open_jobs("olga")
    at.text_input(key="jobs_f_model").input("recsys")
    at.selectbox(key="jobs_f_family").select("popularity")
    at.radio(key="jobs_f_kind").set_value("cron")
    at.text_input(key="jobs_f_cron").input("0 3 * * 0")
    at.text_input(key="jobs_f_dataset").input(dataset.name)
    at.text_area(key="jobs_f_params").input("shrinkage=3")
    at = submit(at, "jobs_form")
    assert_clean(at)
    saved = schedules.get_schedule("recsys")
    assert (saved.cron, saved.dataset, saved.params) == ("0 3 * * 0", "madrid", {"shrinkage": 3.0})
    assert any("revision 1" in s.value for s in at.success)
    assert at.selectbox(key="jobs_edit").value == "recsys"  # the form now edits it

    at.selectbox(key="jobs_model").select("recsys")
    at.text_input(key="jobs_reason").input("fresh data")
    at.button(key="jobs_run_now").click().run()
    assert_clean(at)
    queued = runs.list_runs(model="recsys")
    assert [(r.trigger, r.status, r.reason, r.requested_by) for r in queued] == [
        ("manual", "queued", "fresh data", "olga")
    ]
    assert any("queued run" in s.value for s in at.success)
    assert "fresh data" in _text(at)  # the run's details

    at.button(key="jobs_toggle").click().run()
    assert_clean(at)
    assert schedules.get_schedule("recsys").paused
    assert at.button(key="jobs_toggle").label == "Resume"


def test_a_bad_cron_is_refused_with_the_reason(accounts) -> None:
    dataset = ingest(accounts.root)
    at = open_jobs("olga")
    at.text_input(key="jobs_f_model").input("recsys")
    at.selectbox(key="jobs_f_family").select("popularity")
    at.radio(key="jobs_f_kind").set_value("cron")
    at.text_input(key="jobs_f_cron").input("0 3 * *")
    at.text_input(key="jobs_f_dataset").input(dataset.name)
    at = submit(at, "jobs_form")
    assert not at.exception
    assert any("5 fields" in e.value for e in at.error)
    assert schedules.list_schedules() == []


def test_run_now_from_the_page_is_picked_up_by_the_worker(
    accounts, sqlite_workers: Workers
) -> None:
    pytest.importorskip("core.training")
    dataset = ingest(accounts.root)
    schedules.set_schedule(
        actor=SYSTEM, model="recsys", family="popularity", cron="0 3 1 1 *", dataset=dataset.name
    )
    sqlite_workers.start()
    at = open_jobs("olga")
    at.selectbox(key="jobs_model").select("recsys")
    at.button(key="jobs_run_now").click().run()
    assert_clean(at)
    run_id = runs.list_runs(model="recsys")[0].id
    done = wait_for(
        lambda: runs.get_run(run_id).status == "succeeded" and runs.get_run(run_id),
        timeout=60,
        what="the worker to run it",
        logs=sqlite_workers.logs,
    )
    at.run()
    assert_clean(at)
    text = _text(at)
    assert "runs the schedule" in text and "No worker is running" not in text
    assert done.version is not None and done.version in text
    assert any("registered" in c.value for c in at.code)
    assert done.peak_rss_mb is not None and f"{done.peak_rss_mb:,.0f} MB" in text
    table = next(d.value for d in at.dataframe if "peak memory (MB)" in d.value.columns)
    assert table.loc[table["run"] == run_id, "peak memory (MB)"].item() == done.peak_rss_mb


def test_monitoring_failures_are_shown_with_their_error(accounts: RegistryEnv) -> None:
    import datetime as dt

    from core import monitoring
    from core.monitoring import monitor

    ds, version = monitored_model(accounts.root, users=200, window_minutes=1, min_rows=5)
    at = open_jobs("victor")
    assert "monitoring job failed" not in _text(at)
    start = monitor.align(dt.datetime.now(dt.UTC), dt.timedelta(minutes=1)) - dt.timedelta(
        minutes=2
    )
    monitoring.write_batch(
        [
            monitoring.PredictionRecord(
                model="recsys",
                version=version,
                variant="production",
                ratings=[1.0] * 29,
                k=1,
                places=["p"],
                categories=["museums"],
                scores=[0.5],
                latency_ms=1.0,
                predicted=[1.0] * 29,
                ts=start + dt.timedelta(seconds=i),
            )
            for i in range(10)
        ]
    )
    (accounts.data / ds.path).write_bytes(b"tampered")  # the reference cannot be read
    monitor.run_due(model="recsys")
    at = open_jobs("victor")
    assert "monitoring job failed on 2 recent window results" in _text(at)
    table = next(d.value for d in at.dataframe if "error" in d.value.columns)
    assert set(table["kind"]) == {"data", "prediction"}
    assert table["error"].str.contains("was modified").all()


def test_the_page_and_the_command_line_refuse_bad_hyperparameters_alike(accounts, capsys) -> None:
    with pytest.raises(BadInput) as caught:
        parse_key_values(["shrinkage"])
    expected = str(caught.value)

    dataset = ingest(accounts.root)
    for args in (
        ["schedule", "set", "recsys", "--every", "60", "--family", "popularity"],
        ["train", "popularity", "--dataset", dataset.name],
    ):
        assert main([*args, "--param", "shrinkage"]) == 2
        assert expected in capsys.readouterr().err

    at = open_jobs("olga")
    at.text_input(key="jobs_f_model").input("recsys")
    at.selectbox(key="jobs_f_family").select("popularity")
    at.text_input(key="jobs_f_dataset").input(dataset.name)
    at.text_area(key="jobs_f_params").input("shrinkage=3\n\nshrinkage")
    at = submit(at, "jobs_form")
    assert [plain(e.value) for e in at.error] == [expected]
    assert schedules.list_schedules() == []
