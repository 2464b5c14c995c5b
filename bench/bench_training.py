"""Training time and peak memory per family on generated users.

    .venv/bin/python -m bench.bench_training [--users 100000] [--families autoencoder,svd,...]

Each family trains in its own process (``train_one``), so its peak resident memory
(``ru_maxrss``) is its own. Target (issue 3): the autoencoder on 100,000 users in ≤ 2 minutes
with a peak ≤ 2.5 GB; and every learned family beats the popularity baseline on NDCG@5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, scratch_registry, table

FAMILIES = ("popularity", "svd", "embeddings", "autoencoder")


def train_one(family: str, dataset: str) -> None:
    from core import training
    from core.accounts.auth import SYSTEM

    started = time.perf_counter()
    result = training.train(actor=SYSTEM, family=family, dataset=dataset)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "peak_mb": peak_mb,
                "ndcg@5": result.metrics.get("ndcg@5"),
                "rmse": result.metrics.get("rmse"),
                "baseline_ndcg@5": result.baseline.get("ndcg@5"),
                "epochs": result.history.get("epochs_run"),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train_one(*args.child)
        return
    tmp = scratch_registry()
    from core.accounts.auth import SYSTEM
    from core.data import datasets
    from core.data.generator import generate_users

    path = tmp / "users.parquet"
    generate_users(args.users, seed=42).to_parquet(path, index=False)
    info = datasets.ingest(path, name="bench-users", actor=SYSTEM)
    rows = []
    for family in args.families.split(","):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, str(Path(__file__)), "--child", family, info.label],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if out.returncode != 0:
            rows.append([family, "failed", "", "", "", out.stderr.strip().splitlines()[-1]])
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        wall = time.perf_counter() - started
        target = ""
        if family == "autoencoder":
            target = "met" if r["seconds"] <= 120 and r["peak_mb"] <= 2560 else "MISSED"
        beats = (
            ""
            if family == "popularity"
            else ("yes" if r["ndcg@5"] > r["baseline_ndcg@5"] else "NO")
        )
        rows.append(
            [
                family,
                f"{r['seconds']:.1f} s (process {wall:.1f} s)",
                f"{r['peak_mb']:.0f} MB",
                f"{r['ndcg@5']:.4f}",
                f"{r['rmse']:.4f}",
                r["baseline_ndcg@5"] or "",
                beats,
                r["epochs"] or "",
                target,
            ]
        )
    print(f"{args.users} generated users (seed 42)")
    print(
        table(
            rows,
            [
                "family",
                "train time",
                "peak RSS",
                "NDCG@5",
                "RMSE",
                "baseline NDCG@5",
                "beats baseline",
                "epochs",
                "≤ 2 min, ≤ 2.5 GB",
            ],
        )
    )


if __name__ == "__main__":
    main()
