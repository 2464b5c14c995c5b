"""The statistics of the A/B readout, free of any database: per-arm Wilson intervals,
Newcombe's fixed-horizon interval of a difference, and the always-valid normal-mixture
confidence sequence (mSPRT) that decides, with how many requests it needs to.

Why a confidence sequence: it stays valid however often someone looks and whenever they stop
(``tests/core/rollout/test_ab.py`` repeats equal-arms experiments with a look after every
batch to show it). See docs/rollout.md for the methods.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats


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
