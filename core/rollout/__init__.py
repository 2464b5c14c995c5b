"""Progressive rollout: a staging version's canary share raised step by step on evidence.

An operator starts a plan (steps such as 5 % → 25 % → 50 % → 100 %, a minimum soak time and
minimum canary requests per step, guardrail thresholds). The worker's leader calls
:func:`tick` every few seconds; for each running plan it reads the A/B readout
(:mod:`core.rollout.ab`) over the plan's lifetime and

- rolls back at once (canary share 0, an alert of kind ``rollout``, which the webhook
  receives) when a blocking guardrail is broken with confidence;
- advances one step when every blocking guardrail holds with confidence and the step has
  soaked long enough and served enough canary requests;
- after the last step, promotes the version to production through the registry's gates.

Every change is one transaction that locks the plan row and checks the revision its decision
was made on (a writer that saw step N never moves a plan that is no longer at step N), and
writes an append-only event carrying the figures. The canary share is the plan's: it is set
in the same transaction as the step, so a step is never applied twice and never outlives an
abort. ``rollout_plans.active_model`` is unique: the database itself keeps one live plan per
model, whatever two operators do at the same moment.

The operators' side is :mod:`core.rollout.control`, the worker's :mod:`core.rollout.stepping`;
their public names are re-exported here (``rollout.start(...)``, ``rollout.tick()``).
"""

from __future__ import annotations

from core.rollout.control import (
    DEFAULT_STEPS,
    LIVE,
    MAX_STEPS,
    ROLLOUT_ACTOR,
    STATUSES,
    Event,
    Plan,
    abort,
    check_steps,
    current,
    events,
    pause,
    plans,
    resume,
    set_share,
    start,
)
from core.rollout.stepping import Outcome, evaluate, figures_of, live_plans, tick

__all__ = [
    "DEFAULT_STEPS",
    "LIVE",
    "MAX_STEPS",
    "ROLLOUT_ACTOR",
    "STATUSES",
    "Event",
    "Outcome",
    "Plan",
    "abort",
    "check_steps",
    "current",
    "evaluate",
    "events",
    "figures_of",
    "live_plans",
    "pause",
    "plans",
    "resume",
    "set_share",
    "start",
    "tick",
]
