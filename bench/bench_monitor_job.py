"""The monitoring job's cost: a day of hourly windows for many models over a large log.

    .venv/bin/python -m bench.bench_monitor_job [--rows 1000000] [--models 20] [--hours 24]

On a scratch registry (SQLite unless DATABASE_URL is set): ``--models`` popularity models in
production, each with its training dataset, and ``--rows`` logged requests spread evenly over
the last ``--hours`` whole hours (generated users, real served lists). Then the job
(``core.monitoring.monitor.run_due``, what the worker runs) computes every window once, cold
(prediction
references computed and stored on the way) and, after the results are dropped, warm. Printed:
CPU and wall time in all, per model and per window, and the windows and results stored.

Target (issue 18): a day of hourly windows for 20 models over 1,000,000 logged rows in
≤ 60 s of worker CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from bench.common import scratch_registry, table

POOL = 2000  # distinct served requests per model, reused: building records is not measured


def _records(model: str, version: str, n: int, start: dt.datetime, hours: int, seed: int):  # noqa: ANN202
    from core import monitoring
    from core.data.categories import CATEGORIES
    from core.data.generator import generate_users
    from core.serving import predict

    loaded = predict.load(model, version)
    users = generate_users(POOL, seed=seed)[list(CATEGORIES)].to_numpy(dtype=float)
    masks = users > 0
    served = predict.recommend_loaded(loaded, users, masks, [40.4168] * POOL, [-3.7038] * POOL, 10)
    predicted = loaded.model.predict(users, masks)
    span = hours * 3600
    rng = np.random.default_rng(seed)
    for i in range(n):
        j = int(rng.integers(POOL))
        items = served[j]
        yield monitoring.PredictionRecord(
            model=model,
            version=version,
            variant="production",
            ratings=users[j].tolist(),
            k=10,
            places=[r.place_id for r in items],
            categories=[r.category for r in items],
            scores=[r.score for r in items],
            latency_ms=float(rng.gamma(2.0, 1.5)),
            predicted=predicted[j].tolist(),
            user_id=f"u{j}",
            ts=start + dt.timedelta(seconds=span * (i + 0.5) / n),
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--hours", type=int, default=24)
    args = p.parse_args()
    tmp = scratch_registry()
    from sqlalchemy import delete

    from core import monitoring, registry, training
    from core.accounts.auth import SYSTEM
    from core.data import datasets
    from core.data.generator import generate_users
    from core.db import transaction
    from core.db.tables import DriftResultRow, MonitorResultRow
    from core.monitoring import monitor

    now = dt.datetime.now(dt.UTC)
    end = monitor.align(now, dt.timedelta(hours=1))
    start = end - dt.timedelta(hours=args.hours)
    per_model = args.rows // args.models
    t0 = time.perf_counter()
    write_s = 0.0
    for m in range(args.models):
        name = f"model{m:02d}"
        path = tmp / f"{name}.csv"
        generate_users(1000, seed=m).to_csv(path, index=False)
        ds = datasets.ingest(path, name=name, actor=SYSTEM)
        version = training.train(
            actor=SYSTEM, family="popularity", dataset=ds.label, model=name
        ).version.version
        registry.promote(
            actor=SYSTEM, model=name, version=version, stage="production", reason="test promotion"
        )
        batch = []
        for record in _records(name, version, per_model, start, args.hours, seed=100 + m):
            batch.append(record)
            if len(batch) == 5000:
                w = time.perf_counter()
                monitoring.write_batch(batch)
                write_s += time.perf_counter() - w
                batch = []
        if batch:
            monitoring.write_batch(batch)
        print(f"{name}: {per_model:,} rows logged ({time.perf_counter() - t0:.0f} s)", flush=True)
    rows = []
    for label in ("cold (references computed)", "warm"):
        if label == "warm":
            with transaction() as s:
                s.execute(delete(MonitorResultRow))
                s.execute(delete(DriftResultRow))
        cpu, wall = time.process_time(), time.perf_counter()
        report = monitor.run_due(now=end + dt.timedelta(minutes=1))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        windows = max(1, report.windows)
        rows.append(
            [
                label,
                f"{report.windows}",
                f"{len(report.results)}",
                f"{cpu:.1f}",
                f"{wall:.1f}",
                f"{cpu / args.models:.2f}",
                f"{1000 * cpu / windows:.0f}",
                len(report.failures),
            ]
        )
    print()
    print(
        f"{args.rows:,} logged rows, {args.models} models, {args.hours} hourly windows each; "
        f"writes {args.rows / max(write_s, 1e-9):,.0f} rows/s"
    )
    print(
        table(
            rows,
            [
                "run",
                "windows",
                "results",
                "CPU s",
                "wall s",
                "CPU s / model",
                "CPU ms / window",
                "failures",
            ],
        )
    )
    print("target: ≤ 60 s of CPU for all the windows")


if __name__ == "__main__":
    main()
