"""A/B readout of a canary against production: click-through with its evidence, and guardrails.

Both arms are read from the hourly rollups (``core.monitoring``) over the same hours: the
staging version's ``canary`` traffic against the production version's ``production``
traffic. Per arm: requests, clicks, click-through with a 95 % Wilson interval. The
difference (canary − production) carries two intervals:

- ``ci``: an *always-valid* confidence sequence (the normal-mixture boundary of the mSPRT,
  Johari et al. 2017; Howard et al. 2021), valid however often someone looks and whenever
  they stop. ``decision`` is "better" or "worse" only when it excludes 0: looking every hour
  does not inflate the false-positive rate past ``alpha`` (``tests/core/rollout/test_ab.py``
  repeats equal-arms experiments with a look after every batch to show it);
- ``ci_fixed_horizon``: Newcombe's hybrid score interval, what a single look at a planned
  sample size would report (narrower; never used to decide).

Guardrails say whether the canary is safe to carry more traffic: its error rate (Wilson
bound at ``guard_alpha``), its p99 latency (from the latency histogram), its click-through
(not significantly worse), and the label-free recommendation health figures of each arm from
the monitoring job (``core.monitoring.monitor``). See docs/rollout.md for the methods and why.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats
from sqlalchemy import func, select

from core import monitoring, registry
from core.db import transaction, utcnow
from core.db.tables import N_LATENCY_BINS, FeedbackRow, PredictionLogRow, RollupRow
from core.errors import BadInput

METHOD = (
    "always-valid normal-mixture confidence sequence (mSPRT) on the difference of "
    "click-through rates; Wilson 95 % intervals per arm"
)

# Defaults of a model's ``settings["ab"]`` and of a rollout plan's thresholds.
DEFAULTS: dict[str, float] = {
    "alpha": 0.05,  # false-positive rate of the sequential decision, whatever the looks
    "tau": 0.02,  # s.d. of the mixing prior: the size of difference the test is tuned for
    "mde": 0.2,  # relative difference for "n more requests needed", 20 % of production's CTR
    "guard_alpha": 0.02,  # two-sided level of the guardrails' error-rate interval
    "max_error_rate": 0.02,
    "max_p99_ms": 500.0,
    "min_latency_requests": 100,  # fewer canary requests: p99 is not judged yet
    "health_tolerance": 0.15,  # how far a health figure may fall behind production's
    "click_delay_s": 120.0,  # requests younger than this wait for their clicks
}
HEALTH_GUARDS = ("coverage", "mean_popularity", "diversity")


@dataclass(frozen=True)
class Arm:
    """One arm of the experiment. ``requests`` and ``clicks`` are those old enough for their
    clicks to have arrived (the click-through's); ``served`` and ``errors`` count every
    request up to the readout's end, so a failing canary is seen at once."""

    version: str | None
    requests: int
    clicks: int
    ctr: float
    ctr_ci: tuple[float, float]
    errors: int = 0
    error_rate: float = 0.0
    latency_p99_ms: float = float("nan")
    served: int = 0

    def contract(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "requests": self.requests,
            "clicks": self.clicks,
            "ctr": self.ctr,
            "ctr_ci": list(self.ctr_ci),
        }


@dataclass(frozen=True)
class Guardrail:
    """A safety condition on the canary. ``status``: ``ok`` (holds with confidence),
    ``failed`` (broken with confidence), ``pending`` (not enough traffic to tell) or
    ``unknown`` (no figures yet). Only ``blocking`` ones hold a rollout back or stop it."""

    name: str
    status: str
    value: float | None
    threshold: float | None
    blocking: bool
    detail: str
    production: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Readout:
    model: str
    since: dt.datetime
    until: dt.datetime
    production: Arm
    canary: Arm
    difference: float
    ci: tuple[float, float]
    ci_fixed_horizon: tuple[float, float]
    decision: str
    alpha: float
    tau: float
    detectable: float
    more_requests: int | None
    hours_needed: float | None
    guardrails: list[Guardrail] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``failed`` when a blocking guardrail is broken, ``hold`` while one cannot be judged
        yet, ``ok`` when every blocking guardrail holds with confidence."""
        blocking = [g for g in self.guardrails if g.blocking]
        if any(g.status == "failed" for g in blocking):
            return "failed"
        if any(g.status in ("pending", "unknown") for g in blocking):
            return "hold"
        return "ok"

    def as_json(self) -> dict[str, Any]:
        """The JSON of ``python -m core ab`` (DESIGN.md's contract, plus context keys)."""
        return {
            "model": self.model,
            "production": self.production.contract(),
            "canary": self.canary.contract(),
            "difference": {
                "ctr": _finite(self.difference),
                "ci": [_finite(v) for v in self.ci],
                "ci_fixed_horizon": [_finite(v) for v in self.ci_fixed_horizon],
                "alpha": self.alpha,
                "detectable_difference": _finite(self.detectable),
                "more_requests_needed": self.more_requests,
                "hours_needed": _finite(self.hours_needed),
            },
            "decision": self.decision,
            "method": METHOD,
            "guardrails": [g.as_dict() for g in self.guardrails],
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
        }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- statistics


def wilson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (scipy): good coverage even with few clicks or a rate near 0."""
    if trials <= 0:
        return (0.0, 1.0)
    k = min(int(successes), int(trials))
    ci = stats.binomtest(k, int(trials)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def newcombe(k_a: int, n_a: int, k_b: int, n_b: int, level: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_b − p_a from the two Wilson intervals."""
    if n_a <= 0 or n_b <= 0:
        return (-1.0, 1.0)
    pa, pb = min(k_a, n_a) / n_a, min(k_b, n_b) / n_b
    la, ua = wilson(k_a, n_a, level)
    lb, ub = wilson(k_b, n_b, level)
    d = pb - pa
    return (d - math.hypot(pb - lb, ua - pa), d + math.hypot(ub - pb, pa - la))


def _variance(k_a: Any, n_a: Any, k_b: Any, n_b: Any) -> Any:
    """Plug-in variance of p̂_b − p̂_a; rates shrunk by half a click so it is never 0."""
    pa = (np.minimum(k_a, n_a) + 0.5) / (np.asarray(n_a) + 1)
    pb = (np.minimum(k_b, n_b) + 0.5) / (np.asarray(n_b) + 1)
    return pa * (1 - pa) / n_a + pb * (1 - pb) / n_b


def mixture_half_width(variance: Any, tau: float, alpha: float) -> Any:
    """Half-width of the normal-mixture confidence sequence for an estimate of variance V
    (element-wise on arrays).

    With a N(0, τ²) mixture over the difference θ, the mSPRT's likelihood ratio is
    Λ = √(V/(V+τ²))·exp(θ̂²τ²/(2V(V+τ²))); it crosses 1/α exactly when |θ̂| exceeds
    √(V(V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V))). Ville's inequality bounds the chance that
    this ever happens under θ = 0 by α, whenever one looks.
    """
    v = np.asarray(variance, dtype=np.float64)
    t2 = tau * tau
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.sqrt(v * (v + t2) / t2 * (2 * np.log(1 / alpha) + np.log((v + t2) / v)))
    h = np.where((v > 0) & np.isfinite(v), h, np.inf)
    return float(h) if h.ndim == 0 else h


def decisions(k_a: Any, n_a: Any, k_b: Any, n_b: Any, *, alpha: float, tau: float) -> Any:
    """+1 (b better), -1 (b worse) or 0 (inconclusive), element-wise: the one rule behind
    :func:`sequential`, on arrays for the repeated-experiment test."""
    k_a, n_a, k_b, n_b = (np.asarray(x, dtype=np.float64) for x in (k_a, n_a, k_b, n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.minimum(k_b, n_b) / n_b - np.minimum(k_a, n_a) / n_a
        h = mixture_half_width(_variance(k_a, n_a, k_b, n_b), tau, alpha)
    valid = (n_a > 0) & (n_b > 0)
    return np.where(valid & (d - h > 0), 1, np.where(valid & (d + h < 0), -1, 0))


def sequential(
    k_a: int, n_a: int, k_b: int, n_b: int, *, alpha: float, tau: float
) -> tuple[float, tuple[float, float], str]:
    """(difference, always-valid interval, decision) for arm b against arm a."""
    if n_a <= 0 or n_b <= 0:
        return (math.nan, (-1.0, 1.0), "inconclusive")
    d = min(k_b, n_b) / n_b - min(k_a, n_a) / n_a
    h = float(mixture_half_width(_variance(k_a, n_a, k_b, n_b), tau, alpha))
    lo, hi = d - h, d + h
    sign = int(decisions(k_a, n_a, k_b, n_b, alpha=alpha, tau=tau))
    decision = {1: "better", -1: "worse"}.get(sign, "inconclusive")
    return (d, (max(lo, -1.0), min(hi, 1.0)), decision)


def requests_needed(
    baseline: float,
    share: float,
    difference: float,
    *,
    alpha: float,
    tau: float,
    power: float = 0.8,
) -> float:
    """Total requests (both arms, the canary taking ``share``) at which a true difference of
    ``difference`` is detected with probability ``power`` by the confidence sequence."""
    if not (0 < share < 1) or difference <= 0:
        return math.inf
    p = min(max(baseline, 1e-4), 1 - 1e-4)
    q = min(max(p + difference, 1e-4), 1 - 1e-4)
    z = float(stats.norm.ppf(power))

    def gap(log_n: float) -> float:
        n = math.exp(log_n)
        v = p * (1 - p) / (n * (1 - share)) + q * (1 - q) / (n * share)
        return float(mixture_half_width(v, tau, alpha)) + z * math.sqrt(v) - difference

    lo, hi = math.log(10.0), math.log(1e12)
    if gap(hi) > 0:
        return math.inf
    if gap(lo) <= 0:
        return 10.0
    return math.exp(optimize.brentq(gap, lo, hi, xtol=1e-3))


# ----------------------------------------------------------------------------- readout


@dataclass(frozen=True)
class _Totals:
    requests: int
    errors: int
    clicks: int
    bins: np.ndarray


def _totals(
    model: str, version: str, variant: str, since: dt.datetime, until: dt.datetime, delay_s: float
) -> _Totals:
    """An arm's requests, errors and clicks served in [since, until − delay_s), its latency
    histogram over the hours touched.

    Clicks arrive after their request: counting the newest requests would under-count the
    click-through of whichever arm received more of the recent traffic (the canary after each
    step up), so requests younger than ``delay_s`` wait. Whole hours come from the rollups;
    the partial hours at either end from the prediction log (indexed by model and time), so
    the period is exact to the second and the cost stays at most two hours of log rows.
    """
    cutoff = until - dt.timedelta(seconds=delay_s)
    t = RollupRow
    first_full = -(-int(since.timestamp()) // 3600)  # the first hour starting at or after since
    end_full = int(cutoff.timestamp()) // 3600  # hours before this one ended before the cutoff
    bins = np.zeros(N_LATENCY_BINS, np.int64)
    requests = errors = clicks = 0
    with transaction(write=False) as s:
        arm = [t.model == model, t.version == version, t.variant == variant]
        for b in s.scalars(
            select(t.latency_bins).where(
                *arm, t.hour >= monitoring.hour_of(since), t.hour <= monitoring.hour_of(until)
            )
        ):
            bins += np.asarray(b, dtype=np.int64)
        if cutoff <= since:
            return _Totals(0, 0, 0, bins)
        pieces: list[tuple[dt.datetime, dt.datetime]] = []
        if first_full < end_full:
            r, e, c = s.execute(
                select(
                    func.coalesce(func.sum(t.requests), 0),
                    func.coalesce(func.sum(t.errors), 0),
                    func.coalesce(func.sum(t.clicks), 0),
                ).where(*arm, t.hour >= first_full, t.hour < end_full)
            ).one()
            requests, errors, clicks = int(r), int(e), int(c)
            pieces = [(since, _hour_start(first_full)), (_hour_start(end_full), cutoff)]
        else:
            pieces = [(since, cutoff)]
        for start, end in pieces:
            if end <= start:
                continue
            r, e, c = _logged(s, model, version, variant, start, end)
            requests, errors, clicks = requests + r, errors + e, clicks + c
    return _Totals(requests, errors, clicks, bins)


def _hour_start(hour: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(hour * 3600, tz=dt.UTC)


def _logged(
    s: Any, model: str, version: str, variant: str, start: dt.datetime, end: dt.datetime
) -> tuple[int, int, int]:
    """(requests, errors, clicked requests) of the prediction log in [start, end)."""
    log = PredictionLogRow
    cond = [
        log.model == model,
        log.ts >= start,
        log.ts < end,
        log.version == version,
        log.variant == variant,
    ]
    requests, errors = s.execute(select(func.count(), func.count(log.error)).where(*cond)).one()
    clicked = s.scalar(
        select(func.count(func.distinct(FeedbackRow.request_id)))
        .join(log, log.request_id == FeedbackRow.request_id)
        .where(*cond)
    )
    return int(requests or 0), int(errors or 0), int(clicked or 0)


def canary_start(model: str, version: str) -> dt.datetime | None:
    """The first hour in which ``version`` served canary traffic (None: never)."""
    with transaction(write=False) as s:
        hour = s.scalar(
            select(func.min(RollupRow.hour)).where(
                RollupRow.model == model,
                RollupRow.version == version,
                RollupRow.variant == "canary",
            )
        )
    return None if hour is None else dt.datetime.fromtimestamp(int(hour) * 3600, tz=dt.UTC)


def canary_requests(model: str, version: str) -> int:
    """Every canary request ``version`` has served (the rollout's per-step counter)."""
    with transaction(write=False) as s:
        total = s.scalar(
            select(func.coalesce(func.sum(RollupRow.requests), 0)).where(
                RollupRow.model == model,
                RollupRow.version == version,
                RollupRow.variant == "canary",
            )
        )
    return int(total or 0)


def settings_of(model: str, overrides: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The readout's parameters: defaults, then the model's ``settings["ab"]``, then
    ``overrides`` (a rollout plan's thresholds)."""
    info = registry.get_model(model)
    configured = (info.settings or {}).get("ab") or {}
    out = dict(DEFAULTS)
    for source in (configured, overrides or {}):
        for key, value in source.items():
            if key in DEFAULTS and value is not None:
                out[key] = float(value)
    check_settings(out)
    return out


def check_settings(values: Mapping[str, float]) -> None:
    """Refuse parameters that would make the readout meaningless, naming the first."""
    for key in ("alpha", "guard_alpha"):
        if not 0 < values[key] < 0.5:
            raise BadInput(f"{key} must be between 0 and 0.5, got {values[key]}")
    for key in ("tau", "mde", "max_p99_ms"):
        if not values[key] > 0:
            raise BadInput(f"{key} must be above 0, got {values[key]}")
    if not 0 <= values["max_error_rate"] < 1:
        raise BadInput(f"max_error_rate must be in [0, 1), got {values['max_error_rate']}")
    if values["min_latency_requests"] < 1 or values["health_tolerance"] < 0:
        raise BadInput("min_latency_requests must be ≥ 1 and health_tolerance ≥ 0")
    if not 0 <= values["click_delay_s"] <= 86400:
        raise BadInput(f"click_delay_s must be between 0 and 86400, got {values['click_delay_s']}")


def readout(
    model: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    thresholds: Mapping[str, Any] | None = None,
    canary_version: str | None = None,
) -> Readout:
    """The A/B readout of ``model``'s staging version (or ``canary_version``) against its
    production version, over the hours since ``since`` (default: the canary's first hour)."""
    info = registry.get_model(model)
    params = settings_of(model, thresholds)
    until = until or utcnow()
    prod_version, canary = info.production, canary_version or info.staging
    if since is None:
        since = (canary_start(model, canary) if canary else None) or until
    empty = _Totals(0, 0, 0, np.zeros(N_LATENCY_BINS, np.int64))
    delay = params["click_delay_s"]
    a = _totals(model, prod_version, "production", since, until, delay) if prod_version else empty
    b = _totals(model, canary, "canary", since, until, delay) if canary else empty
    # Errors and latency need no wait for clicks: every request up to now counts.
    now_a = _totals(model, prod_version, "production", since, until, 0) if prod_version else empty
    now_b = _totals(model, canary, "canary", since, until, 0) if canary else empty
    alpha, tau = params["alpha"], params["tau"]
    d, ci, decision = sequential(a.clicks, a.requests, b.clicks, b.requests, alpha=alpha, tau=tau)
    fixed = newcombe(a.clicks, a.requests, b.clicks, b.requests)
    arm_a, arm_b = _arm(prod_version, a, now_a), _arm(canary, b, now_b)
    detectable = params["mde"] * arm_a.ctr if a.requests else math.nan
    more: int | None = None
    hours: float | None = None
    total = a.requests + b.requests
    if total and b.requests and a.requests and detectable > 0:
        needed = requests_needed(arm_a.ctr, b.requests / total, detectable, alpha=alpha, tau=tau)
        if math.isfinite(needed):
            more = max(0, math.ceil(needed - total))
            span_h = max((until - since).total_seconds() / 3600, 1 / 60)
            hours = more / (total / span_h)
    guards = guardrails(model, arm_a, arm_b, decision, params)
    return Readout(
        model, since, until, arm_a, arm_b, d, ci, fixed, decision, alpha, tau, detectable,
        more, hours, guards,
    )  # fmt: skip


def _arm(version: str | None, t: _Totals, now: _Totals) -> Arm:
    ctr = min(t.clicks, t.requests) / t.requests if t.requests else 0.0
    return Arm(
        version,
        t.requests,
        t.clicks,
        ctr,
        wilson(t.clicks, t.requests),
        now.errors,
        now.errors / now.requests if now.requests else 0.0,
        monitoring.percentile_from_bins(now.bins.tolist(), 0.99),
        now.requests,
    )


def guardrails(
    model: str,
    prod: Arm,
    canary: Arm,
    decision: str,
    params: Mapping[str, float],
) -> list[Guardrail]:
    """The canary's guardrails, blocking ones first (see :class:`Guardrail`)."""
    out: list[Guardrail] = []
    limit = params["max_error_rate"]
    if canary.served == 0:
        out.append(Guardrail("error_rate", "pending", None, limit, True, "no canary request yet"))
    else:
        lo, hi = wilson(canary.errors, canary.served, 1 - params["guard_alpha"])
        status = "failed" if lo > limit else "ok" if hi <= limit else "pending"
        out.append(
            Guardrail(
                "error_rate",
                status,
                canary.error_rate,
                limit,
                True,
                f"{canary.errors} errors in {canary.served} requests; "
                f"{100 * (1 - params['guard_alpha']):.0f} % interval [{lo:.4f}, {hi:.4f}]",
                prod.error_rate if prod.served else None,
            )
        )
    max_ms, need = params["max_p99_ms"], int(params["min_latency_requests"])
    p99 = canary.latency_p99_ms
    if canary.served < need:
        out.append(
            Guardrail(
                "latency_p99_ms", "pending", _finite(p99), max_ms, True,
                f"{canary.served} of {need} canary requests needed to judge p99",
                _finite(prod.latency_p99_ms),
            )
        )  # fmt: skip
    else:
        out.append(
            Guardrail(
                "latency_p99_ms", "ok" if p99 <= max_ms else "failed", p99, max_ms, True,
                f"p99 {p99:.1f} ms over {canary.served} canary requests",
                _finite(prod.latency_p99_ms),
            )
        )  # fmt: skip
    out.append(
        Guardrail(
            "click_through",
            "failed" if decision == "worse" else "ok",
            canary.ctr if canary.requests else None,
            None,
            True,
            f"sequential decision: {decision}",
            prod.ctr if prod.requests else None,
        )
    )
    out.extend(_health_guards(model, prod.version, canary.version, params["health_tolerance"]))
    return out


def _health_guards(
    model: str, prod_version: str | None, canary_version: str | None, tolerance: float
) -> list[Guardrail]:
    """Health figures of each arm's latest window (from ``core.monitoring.monitor``): they block
    only
    once both arms have one, since the monitoring job needs a closed window first."""
    from core.metrics import health
    from core.monitoring import monitor

    latest: dict[str, dict[str, Any]] = {}
    for variant, version in (("production", prod_version), ("canary", canary_version)):
        if version is None:
            continue
        rows = [
            r
            for r in monitor.results(model, kind="health", variant=variant, limit=200)
            if r.version == version and r.status == "ok"
        ]
        if rows:
            latest[variant] = rows[-1].figures
    out = []
    for name in HEALTH_GUARDS:
        higher = health.METRICS[name][1]
        c = latest.get("canary", {}).get(name)
        p = latest.get("production", {}).get(name)
        if c is None or p is None:
            out.append(
                Guardrail(
                    f"health:{name}", "unknown", c, None, False,
                    "no monitoring window of both arms yet", p,
                )
            )  # fmt: skip
            continue
        bound = p - tolerance if higher else p + tolerance
        holds = c >= bound if higher else c <= bound
        out.append(
            Guardrail(
                f"health:{name}", "ok" if holds else "failed", float(c), float(bound), True,
                f"{health.METRICS[name][0]}: canary {c:.3f}, production {p:.3f}",
                float(p),
            )
        )  # fmt: skip
    return out


# ----------------------------------------------------------------------------- over time


@dataclass(frozen=True)
class ArmPoint:
    """Click-through of one arm in one hour, with its Wilson band (the dashboard's chart)."""

    hour: dt.datetime
    arm: str
    version: str
    requests: int
    clicks: int
    ctr: float
    low: float
    high: float


def ctr_series(
    model: str, production: str | None, canary: str | None, *, since: dt.datetime
) -> list[ArmPoint]:
    """Hourly click-through per arm since ``since``."""
    out: list[ArmPoint] = []
    for arm, version in (("production", production), ("canary", canary)):
        if version is None:
            continue
        for b in monitoring.traffic(model, since=since, version=version, variant=arm):
            if not b.requests:
                continue
            lo, hi = wilson(b.clicks, b.requests)
            ctr = min(b.clicks, b.requests) / b.requests
            out.append(ArmPoint(b.start, arm, version, b.requests, b.clicks, ctr, lo, hi))
    return out
