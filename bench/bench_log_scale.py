"""The prediction log at scale on PostgreSQL: COPY writes, pages, a day dropped, size on disk.

    .venv/bin/python -m bench.bench_log_scale [--rows 20000000] [--days 30] [--batch 10000]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/test] [--keep]

In a fresh schema of ``--database`` (dropped at the end unless ``--keep``): a production
``popularity`` version, ``--rows`` logged requests spread over the last ``--days`` days
(written through ``monitoring.write_batch``, i.e. COPY into the daily partitions, in batches of
``--batch`` as the API's logger sends them under load; only the time inside ``write_batch`` is
counted),
a data and a prediction drift result per day; then the Monitoring, Request explorer and drift
pages rendered under AppTest (cold and warm), the monitoring job's read of one hour's window,
the drop of the oldest day's partition, and the bytes per row on disk with what a year at
100 requests/s comes to.

Targets (issue 23): writes ≥ 50,000 rows/s; each page ≤ 1 s warm; dropping a day ≤ 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid

from api.logger import BATCH
from bench.bench_monitoring import (
    MODEL,
    page_renders,
    setup_model,
    signed_in_app,
    store_drift_results,
    timed,
    write_logs,
)
from bench.common import table

YEAR_AT_100_RPS = 100 * 365 * 86400
APPLICATION = "planwise-bench-log-scale"  # names the benchmark's connections on the server


class CpuMeter:
    """CPU seconds spent inside ``write_batch`` by this process, and by every PostgreSQL
    process of this machine meanwhile (backends, WAL writer, checkpointer, autovacuum: what
    the writes cost the server), read from /proc when the server runs here. Nothing is asked
    of the server while batches are timed: a query per batch was itself a tenth of a batch."""

    def __init__(self, monitoring) -> None:  # noqa: ANN001
        self.client = 0.0
        self.original = monitoring.write_batch
        self.monitoring = monitoring
        self.local = bool(_postgres_pids())
        self.server_start = _postgres_cpu()
        self.server = 0.0

        def metered(records):  # noqa: ANN001, ANN202
            c = time.process_time()
            try:
                return self.original(records)
            finally:
                self.client += time.process_time() - c

        monitoring.write_batch = metered

    def stop(self) -> None:
        self.server = _postgres_cpu() - self.server_start
        self.monitoring.write_batch = self.original


def _postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _postgres_cpu() -> float:
    total = 0.0
    for pid in _postgres_pids():
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, and the CPU of children waited for (exited backends)
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def explorer_render() -> tuple[str, float, float]:
    """The Request explorer's first visit (cold caches) and its warm reruns."""
    import streamlit as st

    at = signed_in_app()
    st.cache_data.clear()
    t = time.perf_counter()
    at.switch_page("app_pages/explorer.py").run()
    cold = time.perf_counter() - t
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.title[0].value == "Request explorer"
    warm, _ = timed(at.run, repeat=3)
    return "Request explorer", cold, warm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help=f"records per write_batch call (default: the API logger's largest, {BATCH:,})",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()

    import tempfile

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    tmp = tempfile.mkdtemp(prefix="planwise-bench-")
    sep = "&" if "?" in args.database else "?"
    os.environ.update(
        DATABASE_URL=f"{args.database}{sep}application_name={APPLICATION}",
        DATABASE_SCHEMA=schema,
        ARTIFACTS_DIR=f"{tmp}/models",
        DATA_DIR=f"{tmp}/data",
    )
    from sqlalchemy import text

    from core import monitoring
    from core.accounts import bootstrap
    from core.db import get_engine, transaction
    from core.monitoring import partitions as log_partitions

    bootstrap.ensure_ready()
    try:
        run(args, schema, log_partitions, monitoring, transaction, text)
    finally:
        if not args.keep:
            with get_engine().begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            print(f"kept schema {schema}")


def run(args, schema, log_partitions, monitoring, transaction, text) -> None:  # noqa: ANN001
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    version = setup_model(3000)
    # yesterday and the days ahead exist since the migration; older days are made on demand
    # by the writer, here once up front so that their creation is not in the write timing
    first_day = (now - dt.timedelta(days=args.days)).date()
    log_partitions.ensure_days(first_day + dt.timedelta(days=n) for n in range(args.days + 1))
    cpu = CpuMeter(monitoring)
    t0 = time.perf_counter()
    spent = write_logs(args.rows, args.days, args.batch, version, now)
    wall = time.perf_counter() - t0
    cpu.stop()
    rows = sum(n for n, _ in spent)
    inside = sum(s for _, s in spent)
    drift_s = store_drift_results(args.days, version, now)
    with transaction() as s:
        s.execute(text("ANALYZE prediction_logs"))

    renders = [*page_renders(), explorer_render()]

    window_start = now - dt.timedelta(days=args.days // 2)
    window_s, frame = timed(
        lambda: monitoring.window(MODEL, window_start, window_start + dt.timedelta(hours=1)),
        repeat=3,
    )

    parts = log_partitions.partitions()
    total_bytes = sum(p.bytes for p in parts)
    oldest = parts[0]
    with transaction(write=False) as s:
        oldest_rows = s.execute(text(f'SELECT count(*) FROM "{oldest.name}"')).scalar()
    retention = (now.date() - oldest.day).days - 1
    os.environ["LOG_RETENTION_DAYS"] = str(retention)
    from core.config import reset_settings

    reset_settings()
    dropped, drop_s = log_partitions.drop_expired(retention, today=now.date())
    per_row = total_bytes / max(rows, 1)

    print(
        f"\n{rows:,} logged requests over {args.days} days in batches of {args.batch} "
        f"(schema {schema}); building the records included, {wall:.0f} s wall"
    )
    results = [
        [
            "writes (inside write_batch: COPY + rollups)",
            f"{rows / inside:,.0f} rows/s",
            "≥ 50,000",
            rows / inside >= 50_000,
        ],
        [
            "CPU per row: writer process / PostgreSQL (all its processes)",
            f"{cpu.client / rows * 1e6:.1f} µs / "
            + (f"{cpu.server / rows * 1e6:.1f} µs" if cpu.local else "(server not local)"),
            "",
            "",
        ],
        ["a day of drift results stored", f"{drift_s / args.days:.2f} s", "", ""],
    ]
    for title, cold, warm in renders:
        results.append(
            [
                f"page: {title} (cold → warm)",
                f"{cold:.2f} s → {warm:.2f} s",
                "≤ 1 s warm",
                warm <= 1.0,
            ]
        )
    results += [
        [
            "monitoring job: one hour's window read",
            f"{window_s * 1000:.0f} ms ({frame.attrs['total']:,} rows)",
            "",
            "",
        ],
        [
            f"drop a day of raw rows ({oldest_rows:,} rows, {', '.join(dropped)})",
            f"{drop_s * 1000:.0f} ms",
            "≤ 1 s",
            drop_s <= 1.0,
        ],
        ["on disk per logged request (table + indexes)", f"{per_row:,.0f} bytes", "", ""],
        [
            "a year at 100 requests/s",
            f"{YEAR_AT_100_RPS:,} rows ≈ {YEAR_AT_100_RPS * per_row / 1e12:.2f} TB",
            "",
            "",
        ],
        [
            "a day at 100 requests/s",
            f"{8_640_000:,} rows ≈ {8_640_000 * per_row / 1e9:.1f} GB",
            "",
            "",
        ],
    ]
    print(table(results, ["measure", "figure", "target", "met"]))


if __name__ == "__main__":
    main()
