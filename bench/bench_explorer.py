"""Request explorer on a large prediction log: time per page with and without filters.

    .venv/bin/python -m bench.bench_explorer [--rows 1000000]

Writes ``--rows`` generated prediction logs into a scratch SQLite registry (reporting the
write rate), then times the first page, a deep page (keyset cursor half-way down), and
filtered pages (model + status + latency; a rated category; a time window). Target
(issue 9): ≤ 1 s per page with 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from bench.common import scratch_registry, table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    scratch_registry()
    from tqdm import tqdm

    from core import monitoring
    from core.data.categories import CATEGORIES
    from core.monitoring import explorer

    rng = np.random.default_rng(0)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    step = 365 * 86400 / args.rows
    batch = 5000
    t0 = time.perf_counter()
    for b in tqdm(range(0, args.rows, batch), desc="writing logs", unit_scale=batch):
        n = min(batch, args.rows - b)
        ratings = np.where(rng.random((n, 29)) < 0.25, rng.integers(1, 6, (n, 29)), 0)
        recs = [
            monitoring.PredictionRecord(
                model="autoencoder" if i % 4 else "svd",
                version="1.0.0",
                variant="canary" if i % 10 == 0 else "production",
                ratings=ratings[i].astype(float).tolist(),
                k=10,
                places=[f"place-{(b + i + j) % 3587}" for j in range(10)],
                categories=[CATEGORIES[(b + i + j) % 29] for j in range(10)],
                scores=[0.5] * 10,
                latency_ms=float(rng.lognormal(0, 0.6)),
                lat=40.42,
                lng=-3.70,
                predicted=None,
                error="boom" if (b + i) % 97 == 0 else None,
                ts=start + dt.timedelta(seconds=(b + i) * step),
            )
            for i in range(n)
        ]
        monitoring.write_batch(recs)
    write_s = time.perf_counter() - t0

    def timed(label: str, flt: explorer.RequestFilter, before: int | None = None) -> list:
        t = time.perf_counter()
        page = explorer.page(flt, before_id=before, size=50)
        ms = (time.perf_counter() - t) * 1000
        return [label, len(page.items), f"{ms:.1f} ms", ms <= 1000]

    rows = [
        timed("first page, no filter", explorer.RequestFilter()),
        timed("deep page (cursor half-way)", explorer.RequestFilter(), before=args.rows // 2),
        timed("model + errors only", explorer.RequestFilter(model="svd", status="error")),
        timed("latency ≥ 5 ms", explorer.RequestFilter(min_latency_ms=5.0)),
        timed("rated museums and beaches", explorer.RequestFilter(rated=("museums", "beaches"))),
        timed(
            "one day in June",
            explorer.RequestFilter(
                start=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
                end=dt.datetime(2026, 6, 2, tzinfo=dt.UTC),
            ),
        ),
        timed(
            "canary, one week, rated zoo",
            explorer.RequestFilter(
                variant="canary",
                rated=("zoo",),
                start=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                end=dt.datetime(2026, 3, 8, tzinfo=dt.UTC),
            ),
        ),
    ]
    print(
        f"{args.rows} logged requests written in {write_s:.1f} s "
        f"({args.rows / write_s:,.0f} rows/s, target ≥ 20,000)"
    )
    print(table(rows, ["page of 50", "rows", "time", "≤ 1 s"]))


if __name__ == "__main__":
    main()
