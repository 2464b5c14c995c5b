"""``canary``, ``ab`` and ``rollout``: a staging version's share of traffic and its evidence."""

from __future__ import annotations

import argparse
import math

from core.cli.common import actor, add_user_option, int_arg, ready
from core.cli.output import print_json, print_table
from core.errors import BadInput


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"share must be a number, got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"share must be between 0 and 1, got {text}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text}")
    return value


def _steps(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"steps must be comma-separated shares such as 0.05,0.25,0.5,1, got {text!r}"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("canary", help="set the staging version's share of traffic (operator)")
    p.add_argument("name")
    p.add_argument("--share", type=_share, required=True, help="0 to 1")
    add_user_option(p)
    p.set_defaults(handler=_canary)

    p = sub.add_parser("ab", help="A/B readout of the canary against production")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_ab)

    p = sub.add_parser("rollout", help="progressive rollout plans run by the worker")
    rsub = p.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")
    s = rsub.add_parser("start", help="start a plan for the staging version")
    s.add_argument("name")
    s.add_argument("--version", help="insist on this staging version")
    s.add_argument("--steps", type=_steps, default=[0.05, 0.25, 0.5, 1.0])
    s.add_argument("--soak", type=_positive, default=300.0, help="minimum seconds per step")
    s.add_argument("--min-requests", type=int_arg(minimum=0, maximum=100_000_000), default=500)
    s.add_argument("--max-error-rate", type=_positive)
    s.add_argument("--max-p99-ms", type=_positive)
    s.add_argument("--alpha", type=_positive, help="false-positive rate of the decision")
    s.add_argument("--tau", type=_positive, help="difference the sequential test is tuned for")
    s.add_argument(
        "--require-better",
        action="store_true",
        help="promote only once the canary is shown better in click-through",
    )
    s.add_argument("--reason", default="")
    s.add_argument("--json", action="store_true")
    add_user_option(s)
    s.set_defaults(handler=_start)
    for name, text in (
        ("status", "the live or latest plan, its events and the readout"),
        ("pause", "hold the live plan at its step"),
        ("resume", "run a paused plan again"),
        ("abort", "end the live plan; the canary share returns to 0"),
    ):
        c = rsub.add_parser(name, help=text)
        c.add_argument("name")
        if name != "status":
            c.add_argument("--reason", default="")
            add_user_option(c)
        c.add_argument("--json", action="store_true")
        c.set_defaults(handler=_status if name == "status" else _act, action=name)


def _canary(args: argparse.Namespace) -> int:
    from core import registry, rollout

    ready()
    share = rollout.set_share(actor=actor(args), model=args.name, share=args.share)
    staging = registry.get_model(args.name).staging
    print(f"canary share of {args.name} ({staging or 'no staging version'}): {share}")
    return 0


def _ab(args: argparse.Namespace) -> int:
    from core.rollout import ab

    ready()
    r = ab.readout(args.name)
    if args.json:
        print_json(r.as_json())
        return 0
    print(f"{r.model}: canary {r.canary.version} against production {r.production.version}")
    print_table(
        ["arm", "version", "requests", "clicks", "CTR", "95 % CI"],
        [
            [name, a.version, a.requests, a.clicks, f"{a.ctr:.4f}", _ci(a.ctr_ci)]
            for name, a in (("production", r.production), ("canary", r.canary))
        ],
    )
    print(
        f"difference {r.difference:+.4f}, always-valid CI {_ci(r.ci)} "
        f"(fixed-horizon {_ci(r.ci_fixed_horizon)}): {r.decision.upper()} at alpha {r.alpha}"
    )
    if r.more_requests is not None:
        print(
            f"{r.more_requests} more requests to detect a difference of {r.detectable:.4f}"
            + (f" (~{r.hours_needed:.1f} h at this traffic)" if r.hours_needed else "")
        )
    print_table(
        ["guardrail", "status", "canary", "limit", "production", "detail"],
        [
            [g.name, g.status, _num(g.value), _num(g.threshold), _num(g.production), g.detail]
            for g in r.guardrails
        ],
    )
    return 0


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _num(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _start(args: argparse.Namespace) -> int:
    from core import rollout

    ready()
    thresholds = {
        "max_error_rate": args.max_error_rate,
        "max_p99_ms": args.max_p99_ms,
        "alpha": args.alpha,
        "tau": args.tau,
    }
    if args.require_better:
        thresholds["require_better"] = True
    plan = rollout.start(
        actor=actor(args),
        model=args.name,
        version=args.version,
        steps=args.steps,
        min_soak_s=args.soak,
        min_requests=args.min_requests,
        thresholds={k: v for k, v in thresholds.items() if v is not None},
        reason=args.reason,
    )
    _print_plan(plan, args.json)
    return 0


def _act(args: argparse.Namespace) -> int:
    from core import rollout

    ready()
    act = {"pause": rollout.pause, "resume": rollout.resume, "abort": rollout.abort}
    plan = act[args.action](actor=actor(args), model=args.name, reason=args.reason)
    _print_plan(plan, args.json)
    return 0


def _print_plan(plan: object, as_json: bool) -> None:
    from core.rollout import Plan

    assert isinstance(plan, Plan)
    if as_json:
        print_json(plan.as_dict())
        return
    steps = " → ".join(
        f"[{s:.0%}]" if i == plan.step and plan.live else f"{s:.0%}"
        for i, s in enumerate(plan.steps)
    )
    print(
        f"rollout #{plan.id} of {plan.model}@{plan.version}: {plan.status}, "
        f"canary share {plan.share:.0%} ({steps})"
    )


def _status(args: argparse.Namespace) -> int:
    from core import rollout
    from core.rollout import ab

    ready()
    plan = rollout.current(args.name)
    if plan is None:
        raise BadInput(f"{args.name} has no rollout plan; start one with `rollout start`")
    events = rollout.events(plan.id)
    readout = None
    if plan.live:
        readout = ab.readout(
            args.name,
            since=plan.created_at,
            thresholds={k: v for k, v in plan.thresholds.items() if k in ab.DEFAULTS},
            canary_version=plan.version,
        )
    if args.json:
        print_json(
            {
                "plan": plan.as_dict(),
                "events": [e.as_dict() for e in events],
                "readout": None if readout is None else readout.as_json(),
                "verdict": None if readout is None else readout.verdict,
            }
        )
        return 0
    _print_plan(plan, False)
    if plan.message:
        print(plan.message)
    print_table(
        ["when", "who", "action", "step", "share", "note"],
        [
            [e.ts.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.step + 1, e.share, e.message]
            for e in events
        ],
    )
    if readout is not None:
        print(
            f"readout: {readout.decision}, guardrails {readout.verdict}: "
            + ", ".join(f"{g.name} {g.status}" for g in readout.guardrails if g.blocking)
        )
    return 0
