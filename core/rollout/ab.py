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

The statistics themselves are :mod:`core.rollout.ab_stats`; what each arm served is counted by
:mod:`core.rollout.ab_counts`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core import monitoring, registry
from core.db import utcnow
from core.db.tables import N_LATENCY_BINS
from core.errors import BadInput
from core.rollout.ab_counts import Totals, canary_start, totals
from core.rollout.ab_stats import newcombe, requests_needed, sequential, wilson

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
    latency_bins: tuple[int, ...] = ()  # the histogram behind latency_p99_ms

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
    empty = Totals(0, 0, 0, np.zeros(N_LATENCY_BINS, np.int64))
    delay = params["click_delay_s"]
    a = totals(model, prod_version, "production", since, until, delay) if prod_version else empty
    b = totals(model, canary, "canary", since, until, delay) if canary else empty
    # Errors and latency need no wait for clicks: every request up to now counts.
    now_a = totals(model, prod_version, "production", since, until, 0) if prod_version else empty
    now_b = totals(model, canary, "canary", since, until, 0) if canary else empty
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


def _arm(version: str | None, t: Totals, now: Totals) -> Arm:
    bins = tuple(now.bins.tolist())
    ctr = min(t.clicks, t.requests) / t.requests if t.requests else 0.0
    return Arm(
        version,
        t.requests,
        t.clicks,
        ctr,
        wilson(t.clicks, t.requests),
        now.errors,
        now.errors / now.requests if now.requests else 0.0,
        monitoring.percentile_from_bins(bins, 0.99),
        now.requests,
        bins,
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
    out.append(_latency_guard(prod, canary, params))
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


def _latency_guard(prod: Arm, canary: Arm, params: Mapping[str, float]) -> Guardrail:
    """p99 against ``max_p99_ms``, as a share: p99 is over the limit exactly when more than
    1 % of requests are. It fails only when the share of requests surely over the limit is
    above 1 % with confidence (its Wilson bound at ``guard_alpha``), so a few slow requests
    among the first hundred (a pause, a cold cache) hold the canary back instead of rolling
    it back; it holds while the histogram's p99 is over the limit without that confidence."""
    max_ms, need = params["max_p99_ms"], int(params["min_latency_requests"])
    p99 = canary.latency_p99_ms

    def guard(status: str, detail: str) -> Guardrail:
        return Guardrail(
            "latency_p99_ms", status, _finite(p99), max_ms, True, detail,
            _finite(prod.latency_p99_ms),
        )  # fmt: skip

    if canary.served < need:
        return guard("pending", f"{canary.served} of {need} canary requests needed to judge p99")
    surely = monitoring.count_over(canary.latency_bins, max_ms)
    level = 1 - params["guard_alpha"]
    lo, _ = wilson(surely, canary.served, level)
    share = f"{surely} of {canary.served} canary requests over {max_ms:g} ms"
    if lo > 0.01:
        return guard("failed", f"p99 {p99:.1f} ms: {share}, over 1 % at {100 * level:.0f} %")
    if p99 <= max_ms:
        return guard("ok", f"p99 {p99:.1f} ms over {canary.served} canary requests")
    return guard("pending", f"p99 {p99:.1f} ms, but {share}: not yet over 1 % with confidence")


def _health_guards(
    model: str, prod_version: str | None, canary_version: str | None, tolerance: float
) -> list[Guardrail]:
    """Health figures of each arm's latest window (from ``core.monitoring.history``): they
    block only once both arms have one, since the monitoring job needs a closed window first."""
    from core.metrics import health
    from core.monitoring import history

    latest: dict[str, dict[str, Any]] = {}
    for variant, version in (("production", prod_version), ("canary", canary_version)):
        if version is None:
            continue
        rows = [
            r
            for r in history.results(model, kind="health", variant=variant, limit=200)
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
