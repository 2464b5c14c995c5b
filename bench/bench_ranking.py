"""Ranking speed on the real catalogue with the legacy model loaded.

    .venv/bin/python -m bench.bench_ranking [--users 1000] [--reference-users 30]

Targets (issue 3): single-user p50 ≤ 1 ms and p99 ≤ 5 ms, 1,000 users ≤ 0.5 s, and at least
200× faster than the straightforward per-row implementation (tests/reference/planwise.py),
which calls the Keras model directly and loops over the catalogue's rows.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bench.common import ROOT, median, percentile, scratch_registry, table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--single", type=int, default=2000, help="single-user calls timed")
    parser.add_argument("--reference-users", type=int, default=30)
    args = parser.parse_args()
    scratch_registry()

    from core.accounts.auth import SYSTEM
    from core.data import catalogue
    from core.serving import predict
    from core.training import legacy

    legacy_dir = ROOT / "data" / "planwise" / "legacy_model"
    v = legacy.import_legacy(
        actor=SYSTEM,
        model_file=legacy_dir / "autoencoder.h5",
        scaler_file=legacy_dir / "scaler.save",
    )
    loaded = predict.load(v.model, v.version)
    rng = np.random.default_rng(0)
    lat0, lat1, lng0, lng1 = catalogue.madrid_bounds()
    n = max(args.users, args.single)
    prefs = np.where(rng.random((n, 29)) < 0.3, rng.integers(1, 6, (n, 29)), 0).astype(float)
    masks = prefs > 0
    # Users where people are: around catalogue places, so candidate sets are realistic.
    cat = catalogue.load()
    at = rng.choice(len(cat), n)
    lats = cat.lat[at] + rng.normal(0, 0.003, n)
    lngs = cat.lng[at] + rng.normal(0, 0.003, n)

    for i in range(50):  # warm-up
        predict.recommend_loaded(
            loaded, prefs[i : i + 1], masks[i : i + 1], [lats[i]], [lngs[i]], 10
        )
    single = []
    for i in range(args.single):
        t = time.perf_counter()
        predict.recommend_loaded(
            loaded, prefs[i : i + 1], masks[i : i + 1], [lats[i]], [lngs[i]], 10
        )
        single.append((time.perf_counter() - t) * 1000)
    serving = []  # what the API calls: the compiled forward pass and the ranking
    for i in range(args.single):
        t = time.perf_counter()
        predict.rank_one(loaded, prefs[i], masks[i], lats[i], lngs[i], 10)
        serving.append((time.perf_counter() - t) * 1000)
    full = []
    for i in range(200):
        t = time.perf_counter()
        predict.recommend(v.model, v.version, prefs[i], mask=masks[i], lat=lats[i], lng=lngs[i])
        full.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    predict.recommend_loaded(
        loaded, prefs[: args.users], masks[: args.users], lats[: args.users], lngs[: args.users], 10
    )
    batch_s = time.perf_counter() - t

    import joblib
    import keras

    from tests.reference import planwise as ref

    warnings.simplefilter("ignore")  # Keras' input-structure and the old scaler's warnings
    model = keras.models.load_model(legacy_dir / "autoencoder.h5", compile=False)
    scaler = joblib.load(legacy_dir / "scaler.save")
    places = ref.load_places()
    ref.recommend(model, scaler, places, prefs[0].tolist(), masks[0].tolist(), lats[0], lngs[0])
    reference = []
    for i in range(args.reference_users):
        t = time.perf_counter()
        ref.recommend(
            model, scaler, places, prefs[i].tolist(), masks[i].tolist(), lats[i], lngs[i], 10
        )
        reference.append((time.perf_counter() - t) * 1000)

    p50, p99 = median(single), percentile(single, 99)
    ref_p50 = median(reference)
    rows = [
        ["single user, loaded model: p50", f"{p50:.3f} ms", "≤ 1 ms", p50 <= 1],
        ["single user, loaded model: p99", f"{percentile(single, 99):.3f} ms", "≤ 5 ms", p99 <= 5],
        ["API request path (rank_one): p50", f"{median(serving):.3f} ms", "", ""],
        ["API request path (rank_one): p99", f"{percentile(serving, 99):.3f} ms", "", ""],
        ["recommend() incl. registry lookup: p50", f"{median(full):.3f} ms", "", ""],
        [f"batch of {args.users} users", f"{batch_s:.3f} s", "≤ 0.5 s", batch_s <= 0.5],
        [f"per-row reference: p50 ({args.reference_users} users)", f"{ref_p50:.1f} ms", "", ""],
        ["speed-up vs per-row (p50)", f"{ref_p50 / p50:.0f}×", "≥ 200×", ref_p50 / p50 >= 200],
    ]
    print(table(rows, ["measure", "value", "target", "met"]))


if __name__ == "__main__":
    main()
