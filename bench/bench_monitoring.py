"""Prediction-log writes, drift computation and the drift/monitoring pages at a year's scale.

    .venv/bin/python -m bench.bench_monitoring [--logs 1000000] [--days 365] [--batch 2000]

On a scratch SQLite registry: writes ``--logs`` prediction logs spread over the last ``--days``
days (production, plus a 10 % canary for the second half), stores one data and one prediction
drift result per day, then times what the pages read (traffic over the year by day, a year of
drift history, one result's histograms), the AppTest render of each page (cold caches and
warm), one drift computation on 100,000 × 29 rows, and finally a burst of ``--burst`` logs
within one hour, as live traffic arrives. Writes are timed inside ``monitoring.write_batch``
(building the records is not counted).

Targets (issue 5): writes ≥ 20,000 rows/s on SQLite; each page renders in ≤ 1 s with a year
of daily drift results and 1,000,000 logged predictions; one drift result for 100,000 × 29
rows in ≤ 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import ROOT, median, scratch_registry, table

MODEL = "recsys"
USER, PASSWORD = "bench-operator", "bench-operator-password"
PAGES = {
    "Data drift": "app_pages/data_drift.py",
    "Prediction drift": "app_pages/prediction_drift.py",
    "Monitoring": "app_pages/monitoring.py",
}
POOL = 2000  # distinct request payloads, reused: building records must not dominate the timing


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return median(times), result


def setup_model(users: int) -> str:
    """A trained ``popularity`` version in production: its training data is the reference."""
    import tempfile

    from core import registry, training
    from core.accounts import auth
    from core.accounts.auth import SYSTEM
    from core.data import datasets
    from core.data.generator import generate_users

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.csv"
        generate_users(users, seed=1).to_csv(path, index=False)
        ds = datasets.ingest(path, name="madrid", actor=SYSTEM)
    version = training.train(
        actor=SYSTEM, family="popularity", dataset=ds.label, model=MODEL
    ).version.version
    registry.promote(
        actor=SYSTEM, model=MODEL, version=version, stage="production", reason="test promotion"
    )
    auth.create_user(actor=SYSTEM, username=USER, password=PASSWORD, role="operator")
    return version


def write_logs(
    n: int, days: float, batch: int, version: str, now: dt.datetime
) -> list[tuple[int, float]]:
    """Logs spread evenly over ``days``; (rows, seconds inside ``write_batch``) per batch.

    Request ids are ``PredictionRecord``'s own default, as the serving path makes them.
    """
    from core import monitoring
    from core.data.categories import CATEGORIES
    from core.data.generator import generate_users

    rng = np.random.default_rng(0)
    users = generate_users(POOL, seed=7).iloc[:, 2:].to_numpy(dtype=float)
    ratings = [[float(x) for x in row] for row in users]
    predicted = [
        [round(float(x), 4) for x in np.clip(row + rng.normal(0, 0.4, 29), 0, 5)] for row in users
    ]
    categories = [[CATEGORIES[i] for i in np.argsort(-row)[:10]] for row in users]
    places = [[f"ChIJ{rng.integers(10**9)}" for _ in range(10)] for _ in range(POOL)]
    scores = [sorted((round(float(x), 4) for x in rng.random(10)), reverse=True)] * POOL
    start = now - dt.timedelta(days=days)
    step = days * 86400 / n
    latency = rng.lognormal(1.0, 0.6, n)
    which = rng.integers(0, POOL, n)
    canary = rng.random(n) < 0.1
    failed = rng.random(n) < 0.01
    spent: list[tuple[int, float]] = []
    for lo in range(0, n, batch):
        records = []
        for i in range(lo, min(n, lo + batch)):
            k = int(which[i])
            ts = start + dt.timedelta(seconds=i * step)
            error = "ratings must be finite" if failed[i] else None
            records.append(
                monitoring.PredictionRecord(
                    model=MODEL,
                    version=version,
                    variant="canary" if canary[i] and i > n // 2 else "production",
                    ratings=ratings[k],
                    k=10,
                    places=[] if error else places[k],
                    categories=[] if error else categories[k],
                    scores=[] if error else scores[k],
                    latency_ms=float(latency[i]),
                    lat=40.42,
                    lng=-3.70,
                    predicted=None if error else predicted[k],
                    error=error,
                    user_id=f"u{k}",
                    ts=ts,
                )
            )
        t = time.perf_counter()
        monitoring.write_batch(records)
        spent.append((len(records), time.perf_counter() - t))
    return spent


def store_drift_results(days: int, version: str, now: dt.datetime) -> float:
    """One data and one prediction result per day, computed on small generated windows."""
    from core.data.categories import CATEGORIES
    from core.data.generator import DriftEpisode, generate_users
    from core.monitoring import drift, drift_store

    cats = list(CATEGORIES)
    reference = generate_users(3000, seed=1)
    pred_cols = [drift_store.PRED_PREFIX + c for c in cats]

    def predictions(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame(frame[cats].to_numpy(), columns=pred_cols)
        out[drift_store.TOP_CATEGORY] = np.asarray(cats)[np.argmax(frame[cats].to_numpy(), 1)]
        return out

    pred_reference = predictions(generate_users(600, seed=2))
    start = (now - dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    t = time.perf_counter()
    for d in range(days):
        summer = 0.5 - 0.5 * np.cos(2 * np.pi * d / days)  # drifts away and back over the year
        day = generate_users(200, seed=100 + d, drift=DriftEpisode(0, strength=float(summer)))
        window = (start + dt.timedelta(days=d), start + dt.timedelta(days=d + 1))
        drift_store.store(
            model=MODEL,
            version=version,
            kind="data",
            window_start=window[0],
            window_end=window[1],
            reference="madrid@1",
            result=drift.compute(reference, day, numeric=cats, seed=d),
        )
        drift_store.store(
            model=MODEL,
            version=version,
            kind="prediction",
            window_start=window[0],
            window_end=window[1],
            reference=f"traffic {start.isoformat()} – {(start + dt.timedelta(days=3)).isoformat()}",
            result=drift.compute(
                pred_reference,
                predictions(day),
                numeric=pred_cols,
                categorical=[drift_store.TOP_CATEGORY],
                seed=d,
            ),
        )
    return time.perf_counter() - t


def signed_in_app(timeout: float = 120) -> Any:
    """The dashboard under AppTest, signed in as the benchmark's operator."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=timeout).run()
    at.text_input(key="sign_in_username").input(USER)
    at.text_input(key="sign_in_password").input(PASSWORD)
    form = next(b for b in at.button if b.key and b.key.startswith("FormSubmitter:sign_in"))
    form.click().run()
    assert not at.exception, at.exception
    return at


def page_renders() -> list[tuple[str, float, float]]:
    """Seconds to switch to each page with cold caches, and the median of warm reruns."""
    import streamlit as st

    out = []
    at = signed_in_app()
    for title, page in PAGES.items():
        st.cache_data.clear()
        t = time.perf_counter()
        at.switch_page(page).run()
        cold = time.perf_counter() - t
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        assert at.title[0].value == title
        warm, _ = timed(at.run, repeat=3)
        out.append((title, cold, warm))
    # The widest views: a year by day, and 30 days by hour (the longest hourly period).
    for period, bucket in (("1 year", "day"), ("30 days", "hour")):
        at.segmented_control(key="monitoring_period").set_value(period)
        at.segmented_control(key="monitoring_bucket").set_value(bucket)
        st.cache_data.clear()
        t = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t
        assert not at.exception
        warm, _ = timed(at.run, repeat=3)
        out.append((f"Monitoring, {period} by {bucket}", cold, warm))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--batch", type=int, default=2000, help="records per write_batch call")
    parser.add_argument("--burst", type=int, default=100_000, help="logs written within an hour")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch registry (~1 GB)")
    args = parser.parse_args()
    tmp = scratch_registry()

    from core import monitoring
    from core.data.categories import CATEGORIES
    from core.data.generator import DriftEpisode, generate_users
    from core.monitoring import drift, drift_store

    now = dt.datetime.now(dt.UTC)
    version = setup_model(5000)
    rows: list[list[object]] = []

    batches = write_logs(args.logs, args.days, args.batch, version, now)
    write_s = sum(t for _, t in batches)
    rate = args.logs / write_s
    rows.append(
        [
            f"write {args.logs:,} prediction logs (batches of {args.batch})",
            f"{rate:,.0f} rows/s ({write_s:.1f} s)",
            "≥ 20,000 rows/s",
            rate >= 20_000,
        ]
    )
    tenth = max(1, len(batches) // 10)
    for label, part in (("first", batches[:tenth]), ("last", batches[-tenth:])):
        n, t = sum(r for r, _ in part), sum(t for _, t in part)
        rows.append([f"  … the {label} {n:,} rows", f"{n / t:,.0f} rows/s", "", ""])
    t0 = time.perf_counter()
    import evidently  # noqa: F401 - timed apart: every first drift computation pays for it

    rows.append(
        ["import Evidently (once per process)", f"{time.perf_counter() - t0:.1f} s", "", ""]
    )
    store_s = store_drift_results(args.days, version, now)
    rows.append(
        [f"compute and store {args.days} × 2 daily drift results", f"{store_s:.1f} s", "", ""]
    )

    year_ago = now - dt.timedelta(days=args.days)
    s, buckets = timed(
        lambda: [
            monitoring.traffic(MODEL, since=year_ago, until=now, bucket_hours=24, variant=v)
            for v in ("production", "canary")
        ]
    )
    rows.append(
        [
            f"traffic over {args.days} days by day, 2 variants ({sum(map(len, buckets))} buckets)",
            f"{s * 1000:.0f} ms",
            "",
            "",
        ]
    )
    s, _ = timed(lambda: monitoring.traffic(MODEL, since=year_ago, until=now, bucket_hours=1))
    rows.append([f"traffic over {args.days} days by hour", f"{s * 1000:.0f} ms", "", ""])
    s, _ = timed(lambda: monitoring.summary(MODEL, hours=24))
    rows.append(["summary of the last 24 h", f"{s * 1000:.0f} ms", "", ""])
    for kind in ("data", "prediction"):

        def history(kind: str = kind) -> pd.DataFrame:
            return drift_store.history_frame(drift_store.history(MODEL, kind))

        s, frame = timed(history)
        rows.append(
            [f"{kind} drift history + frame ({len(frame):,} rows)", f"{s * 1000:.0f} ms", "", ""]
        )
    latest = drift_store.latest(MODEL, "prediction")
    assert latest is not None
    s, _ = timed(lambda: drift_store.get(latest.id))
    rows.append(["one result with its per-column histograms", f"{s * 1000:.1f} ms", "", ""])

    for title, cold, warm in page_renders():
        rows.append(
            [
                f"page {title}: cold caches / warm",
                f"{cold:.2f} s / {warm:.2f} s",
                "≤ 1 s",
                cold <= 1,
            ]
        )

    cats = list(CATEGORIES)
    reference = generate_users(100_000, seed=1)
    current = generate_users(100_000, seed=2, drift=DriftEpisode(0))
    s, result = timed(lambda: drift.compute(reference, current, numeric=cats), repeat=3)
    rows.append(
        [
            "drift of 100,000 × 29 rows vs 100,000 (sampled to 20,000 a side)",
            f"{s:.2f} s ({len(result.drifted_columns)} drifted)",
            "≤ 10 s",
            s <= 10,
        ]
    )
    end = now
    start = end - dt.timedelta(days=args.days * 100_000 / args.logs)
    t = time.perf_counter()
    stored = drift_store.data_drift(MODEL, start, end)
    s = time.perf_counter() - t
    logged = monitoring.window(MODEL, start, end, max_rows=1).attrs["total"]
    rows.append(
        [
            f"data drift of the logs of {logged:,} requests, end to end (read, sample, store)",
            f"{s:.2f} s",
            "≤ 10 s",
            s <= 10,
        ]
    )
    t = time.perf_counter()
    path = drift_store.report_html(stored.id)
    rows.append(
        [
            "Evidently HTML report of that result, on demand",
            f"{time.perf_counter() - t:.1f} s ({path.stat().st_size / 1e6:.1f} MB)",
            "",
            "",
        ]
    )

    # Live traffic: a burst within the last hour, as a busy API writes it (each batch then
    # touches one or two hourly rollups, where the year above touched dozens), on top of the
    # table that already holds the year.
    batches = write_logs(args.burst, 1 / 24, args.batch, version, dt.datetime.now(dt.UTC))
    burst_s = sum(t for _, t in batches)
    rows.append(
        [
            f"write {args.burst:,} more logs within one hour (on top of the year)",
            f"{args.burst / burst_s:,.0f} rows/s ({burst_s:.1f} s)",
            "≥ 20,000 rows/s",
            args.burst / burst_s >= 20_000,
        ]
    )

    size = (tmp / "registry.db").stat().st_size / 1e6
    text = f"{args.logs:,} logs over {args.days} days, SQLite {size:,.0f} MB\n" + table(
        rows, ["measure", "value", "target", "met"]
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    if args.keep:
        print(f"registry kept in {tmp}")
    else:
        from core.db import dispose_engines

        dispose_engines()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
