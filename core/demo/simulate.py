"""A traffic simulator: generated users asking for recommendations over days.

Replays users of the seeded generator through the real serving path (the production version,
and the staging version for a canary share), with a daily rhythm, a small share of malformed
requests (which fail validation for real), clicks on returned places of categories the user
likes, and an optional drift episode (summer by default). The traffic goes into the prediction
log exactly as the API writes it; then the monitoring job (:func:`core.monitoring.monitor.run_due`,
what
the worker runs) computes the windows of the simulated days from that log, so the drift and
monitoring pages show what the production path computes. Windows are the model's own
(``settings["monitor_window_minutes"]``, else ``MONITOR_WINDOW_MINUTES``): a model that sees a
few hundred requests a day is best judged by day.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core import monitoring, registry
from core.accounts.auth import Actor, require
from core.data import catalogue
from core.data.categories import CATEGORIES, N_CATEGORIES
from core.data.generator import DriftEpisode, generate_users
from core.errors import BadInput, CoreError
from core.families.base import no_progress
from core.monitoring import alerts, monitor
from core.retraining import queue
from core.serving import predict

BATCH = 500


@dataclass
class SimulationReport:
    model: str
    days: int
    requests: int = 0
    errors: int = 0
    clicks: int = 0
    drift_results: int = 0
    alerts: int = 0
    drifted_days: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.model}: {self.requests} requests over {self.days} days, {self.errors} "
            f"errors, {self.clicks} clicks, {self.drift_results} drift results, "
            f"{self.alerts} alerts"
        )


def _day_times(rng: np.random.Generator, day: dt.datetime, n: int) -> list[dt.datetime]:
    """Request times with a daily rhythm: quiet nights, busy afternoons and evenings."""
    hours = np.arange(24)
    weight = 0.2 + np.exp(-((hours - 13) ** 2) / 8) + 1.2 * np.exp(-((hours - 20) ** 2) / 6)
    chosen = rng.choice(24, size=n, p=weight / weight.sum())
    seconds = np.sort(chosen * 3600 + rng.uniform(0, 3600, n))
    return [day + dt.timedelta(seconds=float(s)) for s in seconds]


def simulate(
    *,
    actor: Actor,
    model: str,
    days: int,
    users_per_day: int = 300,
    start: dt.datetime | None = None,
    seed: int = 0,
    drift: DriftEpisode | None = None,
    canary_share: float | None = None,
    error_share: float = 0.01,
    progress: Callable[[float, str], None] | None = None,
) -> SimulationReport:
    require(actor, "operate", "simulate traffic")
    if days < 1 or users_per_day < 1:
        raise BadInput("days and users per day must be at least 1")
    if not 0 <= error_share < 1:
        raise BadInput(f"error share must be in [0, 1), got {error_share}")
    progress = progress or no_progress
    production = predict.load(model)
    staging = registry.find_version(model, "staging")
    canary = predict.load_version(staging) if staging is not None else None
    share = registry.get_model(model).canary_share if canary_share is None else canary_share
    start = start or (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    cat = catalogue.load()
    rng = np.random.default_rng(seed)
    report = SimulationReport(model, days)
    for d in range(days):
        day = start + dt.timedelta(days=d)
        episode = (
            DriftEpisode(0, drift.shift, drift.strength) if drift and d >= drift.start_day else None
        )
        users = generate_users(
            users_per_day, seed=seed * 10_007 + d, days=1, start=day, drift=episode, id_prefix="sim"
        )
        ratings = users.iloc[:, 2:].to_numpy(dtype=float)
        at = rng.choice(len(cat), users_per_day)
        lats = cat.lat[at] + rng.normal(0, 0.002, users_per_day)
        lngs = cat.lng[at] + rng.normal(0, 0.002, users_per_day)
        times = _day_times(rng, day, users_per_day)
        on_canary = (canary is not None) & (rng.random(users_per_day) < (share or 0.0))
        broken = rng.random(users_per_day) < error_share
        records: list[monitoring.PredictionRecord] = []
        for i in range(users_per_day):
            loaded = canary if on_canary[i] and canary is not None else production
            variant = "canary" if loaded is canary else "production"
            prefs = ratings[i].copy()
            if broken[i]:
                prefs[rng.integers(N_CATEGORIES)] = np.nan  # a client bug, refused for real
            t0 = time.perf_counter()
            error, items, predicted = None, [], None
            try:
                matrix = predict.check_ratings(prefs)
                mask = matrix > 0
                predicted = loaded.model.predict(matrix, mask)[0]
                items = predict.recommend_loaded(loaded, matrix, mask, [lats[i]], [lngs[i]], 10)[0]
            except CoreError as exc:
                error = str(exc)
            latency = (time.perf_counter() - t0) * 1000
            records.append(
                monitoring.PredictionRecord(
                    model=model,
                    version=loaded.version.version,
                    variant=variant,
                    ratings=[0.0 if np.isnan(x) else float(x) for x in prefs],
                    k=10,
                    places=[r.place_id for r in items],
                    categories=[r.category for r in items],
                    scores=[r.score for r in items],
                    latency_ms=latency,
                    lat=float(lats[i]),
                    lng=float(lngs[i]),
                    predicted=None if predicted is None else predicted.tolist(),
                    error=error,
                    user_id=str(users.iloc[i, 0]),
                    ts=times[i],
                )
            )
        for chunk in range(0, len(records), BATCH):
            monitoring.write_batch(records[chunk : chunk + BATCH])
        report.requests += len(records)
        report.errors += sum(r.error is not None for r in records)
        for i, r in enumerate(records):  # a user clicks a place of a category they love
            if r.error is None and r.places and rng.random() < 0.35:
                wanted = [
                    p
                    for p, c in zip(r.places, r.categories, strict=True)
                    if ratings[i][CATEGORIES.index(c)] >= 4
                ]
                if wanted:
                    monitoring.record_feedback(r.request_id, wanted[0])
                    report.clicks += 1
        progress((d + 1) / days * 0.8, f"day {d + 1}/{days}: {len(records)} requests")
    end = start + dt.timedelta(days=days)
    before = {a.id for a in alerts.list_alerts(model, status=None, limit=100_000)}
    run = monitor.run_due(
        model=model,
        since=start,
        until=min(end, dt.datetime.now(dt.UTC)),
        max_windows=100_000,
        on_drift=queue.queue_drift_retrains,
        progress=lambda share, message: progress(0.8 + 0.2 * share, message),
    )
    report.drift_results = sum(x.drift_result_id is not None for x in run.results)
    limits = alerts.thresholds(model)
    for result in run.results:
        if result.kind == "data" and result.variant == "production" and result.status == "ok":
            crossed = alerts.drift_conditions(
                limits,
                model=model,
                kind="data",
                drift_share=result.figures["drift_share"],
                columns={
                    c: {"score": v, "method": ""} for c, v in result.figures["top_columns"].items()
                },
                rows=result.rows,
            )
            if crossed:  # what the alerts say, not the noisier per-column test
                report.drifted_days.append(f"{result.window_start:%Y-%m-%d %H:%M}")
    report.alerts = len(
        [a for a in alerts.list_alerts(model, status=None, limit=100_000) if a.id not in before]
    )
    progress(1.0, f"{days} days simulated, {run.windows} windows computed")
    return report


def demo_traffic(*, actor: Actor, days: int, seed: int) -> str:
    """The demo's traffic: the autoencoder's production version, a summer episode at 2/3.

    Two hundred requests a day are too few to judge by the hour, so the demo's autoencoder
    is monitored by day (its ``monitor_window_minutes`` setting).
    """
    registry.update_model(
        actor=actor, name="autoencoder", settings={"monitor_window_minutes": 24 * 60}
    )
    report = simulate(
        actor=actor,
        model="autoencoder",
        days=days,
        users_per_day=200,
        seed=seed,
        drift=DriftEpisode(start_day=max(1, days * 2 // 3)),
    )
    return report.summary()
