"""The Rollout page under AppTest: plan, readout, guardrails and shadow comparison for every
role; only an operator acts, and an abort reaches the registry."""

from __future__ import annotations

import random

import pytest

from core import monitoring, registry, rollout
from core.accounts.auth import SYSTEM
from core.db import utcnow
from core.rollout import shadow
from tests.dashboard.conftest import assert_clean, sign_in
from tests.fixtures.dashboard import MODEL, Populated

PAGE = "app_pages/rollout.py"


def _open(username: str):  # noqa: ANN202
    at = sign_in(username)
    at.switch_page(PAGE).run()
    picker = [s for s in at.selectbox if s.key == "rollout_model"]
    if picker and picker[0].value != MODEL:
        picker[0].select(MODEL).run()
    return at


@pytest.fixture
def rolling(populated: Populated) -> Populated:
    """recsys with a running plan, an hour of A/B traffic with clicks, and shadow scores."""
    registry.update_model(actor=SYSTEM, name=MODEL, settings={"ab": {"click_delay_s": 0}})
    rollout.start(actor=SYSTEM, model=MODEL, steps=[0.1, 0.5, 1.0], min_soak_s=600)
    rnd = random.Random(3)
    ts = utcnow()  # after the plan's start: the readout counts only traffic since then
    records = [
        monitoring.PredictionRecord(
            model=MODEL,
            version=populated.staging if canary else populated.production,
            variant="canary" if canary else "production",
            ratings=[0.0] * 29,
            k=2,
            places=["p1", "p2"],
            categories=["parks", "museums"],
            scores=[1.0, 0.5],
            latency_ms=4.0,
            ts=ts,
        )
        for canary in (rnd.random() < 0.3 for _ in range(600))
    ]
    monitoring.write_batch(records)
    for r in records[::3]:
        monitoring.record_feedback(r.request_id, "p1")
    shadow.store(
        [
            shadow.ShadowScore(
                ts=utcnow(),
                model=MODEL,
                production_version=populated.production,
                shadow_version=populated.staging,
                request_id=f"r{i}",
                k=2,
                overlap=0.5,
                gained=["x"],
                lost=["p2"],
                category_shift=0.5,
                production_categories=["parks", "museums"],
                shadow_categories=["parks", "zoo"],
                latency_ms=3.0,
            )  # fmt: skip
            for i in range(5)
        ]
    )
    return populated


def test_a_viewer_sees_the_evidence_and_no_action(rolling):
    at = _open("victor")
    assert_clean(at)
    text = " ".join(m.value for m in at.markdown)
    assert f"Rollout #1 of **{rolling.staging}**" in text.replace("\\", "")
    labels = {m.label: m.value for m in at.metric}
    ctr = {label.split()[0]: value for label, value in labels.items() if " CTR " in label}
    assert set(ctr) == {"Production", "Canary"} and "—" not in ctr.values()  # traffic counted
    assert labels["Requests scored"] == "5" and labels["Overlap@k"] == "50.0%"
    guards = next(d.value for d in at.dataframe if "guardrail" in d.value.columns)
    assert {"error_rate", "latency_p99_ms", "click_through"} <= set(guards["guardrail"])
    keys = {b.key for b in at.button}
    assert not keys & {"rollout_pause", "rollout_abort", "rollout_set_share", "rollout_set_shadow"}
    assert len(at.get("plotly_chart")) == 2  # CTR per arm with bands, category mix


def test_an_operator_aborts_and_the_share_returns_to_zero(rolling):
    at = _open("olga")
    assert_clean(at)
    assert registry.get_model(MODEL).canary_share == 0.1
    next(b for b in at.button if b.key == "rollout_abort").click().run()
    assert_clean(at)
    assert rollout.current(MODEL).status == "aborted"
    assert registry.get_model(MODEL).canary_share == 0.0
    assert any("Aborted rollout #1" in s.value.replace("\\", "") for s in at.success)
    assert "rollout_abort" not in {b.key for b in at.button}  # the plan is over


def test_page_with_no_model(dash_registry):
    at = _open("victor")
    assert_clean(at)
    assert any("No model is registered yet" in i.value for i in at.info)


def test_page_with_no_plan_offers_a_start_to_operators_only(populated):
    at = _open("olga")
    assert_clean(at)
    assert any(e.label.startswith("Start a rollout") for e in at.expander)
    viewer = _open("victor")
    assert_clean(viewer)
    assert not any(e.label.startswith("Start a rollout") for e in viewer.expander)
