"""Every dashboard page's server-side run time on a registry at scale.

    .venv/bin/python bench/bench_dashboard.py [--versions 1000] [--logs 1000000]

On a scratch SQLite registry: one trained ``popularity`` version in production plus
``--versions`` − 1 more versions of the same model (its artifact folder registered again with
jittered metrics, as retraining would leave them), ``--logs`` prediction logs over a year and
a week of daily drift results. Then, through Streamlit's AppTest (the page scripts exactly as
``streamlit run`` executes them, without a browser): the first page after start (a fresh
session: sign-in and Overview with every cache cold), and each page with its caches cleared
("cold") and rerun ("warm", the median of three).

Targets (issue 4): ≤ 1 s warm for every page, ≤ 5 s for the first page after start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_monitoring import MODEL, setup_model, signed_in_app, store_drift_results, write_logs
from common import median, scratch_registry, table

PAGES = {
    "Overview": "app_pages/overview.py",
    "Models": "app_pages/models.py",
    "Compare versions": "app_pages/compare.py",
    "Preview recommendations": "app_pages/preview.py",
    "Audit a version": "app_pages/audit.py",
    "Deploy": "app_pages/deploy.py",
    "Jobs": "app_pages/jobs.py",
    "Data drift": "app_pages/data_drift.py",
    "Prediction drift": "app_pages/prediction_drift.py",
    "Monitoring": "app_pages/monitoring.py",
    "Request explorer": "app_pages/explorer.py",
    "Slices and model report": "app_pages/report.py",
}


def add_versions(n: int, first: str) -> float:
    """Register ``n`` more versions from copies of ``first``'s artifacts; seconds spent."""
    from core import datasets, registry
    from core.auth import SYSTEM

    source = registry.get_version(MODEL, first)
    assert source.dataset is not None
    dataset = datasets.get_dataset(source.dataset.name, source.dataset.version)
    keep = ("framework", "framework_version", "input_shape", "history", "split", "baseline")
    extra = {k: source.metadata[k] for k in keep if k in source.metadata}
    folder = registry.verified_dir(source)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            staged = Path(tmp) / f"v{i}"
            shutil.copytree(folder, staged, ignore=shutil.ignore_patterns("metadata.json"))
            metrics = {k: float(v) * (1 + rng.normal(0, 0.02)) for k, v in source.metrics.items()}
            registry.register_version(
                actor=SYSTEM,
                model=MODEL,
                family=source.family,
                staged_dir=staged,
                metrics=metrics,
                hyperparameters=source.hyperparameters,
                dataset_id=dataset.id,
                metadata=extra,
                description=f"bench version {i + 2}",
                bump="patch",
            )
    return time.perf_counter() - t


def page_times() -> list[list[object]]:
    import streamlit as st

    rows: list[list[object]] = []
    st.cache_data.clear()
    st.cache_resource.clear()
    t = time.perf_counter()
    at = signed_in_app(timeout=300)
    first = time.perf_counter() - t
    assert at.title[0].value == "Overview"
    rows.append(
        ["first page after start (sign in + Overview)", f"{first:.2f} s", "≤ 5 s", first <= 5]
    )
    for title, page in PAGES.items():
        st.cache_data.clear()
        t = time.perf_counter()
        at.switch_page(page).run()
        cold = time.perf_counter() - t
        problems = [e.value for e in [*at.exception, *at.error]]
        assert not problems, (title, problems)
        assert at.title[0].value == title, (title, at.title[0].value)
        warm_runs = []
        for _ in range(3):
            t = time.perf_counter()
            at.run()
            warm_runs.append(time.perf_counter() - t)
        warm = median(warm_runs)
        rows.append(
            [
                f"page {title}: cold caches / warm",
                f"{cold:.2f} s / {warm:.2f} s",
                "≤ 1 s warm",
                warm <= 1,
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--logs", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    tmp = scratch_registry()
    now = dt.datetime.now(dt.UTC)
    first = setup_model(5000)
    rows: list[list[object]] = []
    s = add_versions(args.versions - 1, first)
    rows.append([f"register {args.versions - 1:,} more versions", f"{s:.1f} s", "", ""])
    t = time.perf_counter()
    write_logs(args.logs, 365, 2000, first, now)
    rows.append(
        [f"write {args.logs:,} logs over a year", f"{time.perf_counter() - t:.1f} s", "", ""]
    )
    s = store_drift_results(7, first, now)
    rows.append(["store 7 days of data and prediction drift", f"{s:.1f} s", "", ""])
    rows += page_times()
    text = (
        f"{args.versions:,} versions, {args.logs:,} logged predictions, SQLite "
        f"{(tmp / 'registry.db').stat().st_size / 1e6:,.0f} MB\n"
        + table(rows, ["measure", "value", "target", "met"])
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    from core.db import dispose_engines

    dispose_engines()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
