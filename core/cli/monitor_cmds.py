"""``drift``, ``simulate`` and ``alerts``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import inputs
from core.cli.common import DAY, DAYS, SEED, actor, add_user_option, int_arg, ready
from core.cli.output import print_json, print_table, progress_bar
from core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("drift", help="data drift between two CSV/Parquet files")
    p.add_argument("reference", type=Path)
    p.add_argument("current", type=Path)
    p.add_argument("--columns", help="comma-separated (default: the 29 categories, if present)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", type=Path, metavar="OUT", help="also write Evidently's report")
    p.set_defaults(handler=_drift)

    p = sub.add_parser("simulate", help="replay generated users through a model over days")
    p.add_argument("name")
    p.add_argument("--days", type=DAYS, default=14)
    p.add_argument("--users-per-day", type=int_arg(maximum=1_000_000), default=300)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--drift-from-day", type=DAY, help="summer drift episode from this day on")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default: DAYS days ago)")
    add_user_option(p)
    p.set_defaults(handler=_simulate)

    p = sub.add_parser(
        "monitor",
        help="the monitoring job: drift, service and recommendation health of live traffic",
    )
    monitor_sub = p.add_subparsers(dest="monitor_command", required=True, metavar="COMMAND")
    run = monitor_sub.add_parser(
        "run", help="compute every monitoring window that is due (what the worker runs)"
    )
    run.add_argument("--model", help="only this model (default: every model with traffic)")
    run.add_argument(
        "--now",
        action="store_true",
        help="also the current, unfinished window (stored as provisional, replaced when it closes)",
    )
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=_monitor_run)

    p = sub.add_parser("alerts", help="open alerts")
    p.add_argument("--model")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_alerts)


def _drift(args: argparse.Namespace) -> int:
    import pandas as pd

    from core.data import files
    from core.data.categories import CATEGORIES
    from core.monitoring import drift

    if args.html is not None:
        inputs.prepare_output(args.html, "the report")
    reference = files.read_table(args.reference, "reference")
    current = files.read_table(args.current, "current")
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not columns:
            raise BadInput("--columns lists no column")
    elif set(CATEGORIES) <= set(reference.columns):
        columns = list(CATEGORIES)
    else:
        columns = [c for c in reference.columns if c in current.columns]
        if not columns:
            raise BadInput("the two files share no column")
    for side, frame, name in (
        ("reference", reference, args.reference),
        ("current", current, args.current),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise BadInput(
                f"{side} file {name.name} lacks the column(s) {', '.join(map(repr, missing))}"
            )
    # Numeric when either file holds numbers there (or it is a rating column): text on the
    # other side is then an error naming the column, not a silent categorical comparison.
    numeric = [
        c
        for c in columns
        if c in CATEGORIES
        or pd.api.types.is_numeric_dtype(reference[c])
        or pd.api.types.is_numeric_dtype(current[c])
    ]
    categorical = [c for c in columns if c not in numeric]
    result = drift.compute(
        reference, current, numeric=numeric, categorical=categorical, html=args.html is not None
    )
    if args.html is not None:
        inputs.write_text(args.html, "the report", result.html or "")
    out = result.as_dict()
    if args.json:
        print_json(out)
    else:
        print_table(
            ["column", "drifted", "method", "score", "threshold"],
            [
                [c, "yes" if d["drifted"] else "", d["method"], f"{d['score']:.4f}", d["threshold"]]
                for c, d in out["columns"].items()
            ],
        )
        print(f"drift share {out['drift_share']:.2f}; dataset drift: {out['dataset_drift']}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    ready()
    from core.data.generator import DriftEpisode
    from core.demo import simulate

    start = None
    if args.start:
        try:
            start = inputs.parse_time(args.start, "--start")
        except BadInput:
            raise BadInput(f"--start must be YYYY-MM-DD, got {args.start!r}") from None
        if not 1900 <= start.year <= 9000:
            raise BadInput(f"--start must be a day between 1900 and 9000, got {args.start!r}")
    update, close = progress_bar(f"simulate {args.name}")
    try:
        report = simulate.simulate(
            actor=actor(args),
            model=args.name,
            days=args.days,
            users_per_day=args.users_per_day,
            seed=args.seed,
            start=start,
            progress=update,
            drift=None if args.drift_from_day is None else DriftEpisode(args.drift_from_day),
        )
    finally:
        close()
    print_json({**report.__dict__, "summary": report.summary()})
    return 0


def _alerts(args: argparse.Namespace) -> int:
    ready()
    from core.monitoring import alerts

    found = alerts.list_alerts(args.model, status=None if args.all else "open")
    if args.json:
        print_json([a.as_dict() for a in found])
    else:
        print_table(
            ["#", "created", "model", "kind", "subject", "severity", "status", "message"],
            [
                [
                    a.id,
                    f"{a.created_at:%Y-%m-%d %H:%M}",
                    a.model,
                    a.kind,
                    a.subject,
                    a.severity,
                    a.status,
                    a.message,
                ]
                for a in found
            ],
        )
    return 0


def _monitor_run(args: argparse.Namespace) -> int:
    ready()
    from core.monitoring import monitor
    from core.retraining import queue

    update, close = progress_bar("monitor")
    try:
        report = monitor.run_due(
            model=args.model,
            include_current=args.now,
            on_drift=queue.queue_drift_retrains,
            progress=update,
        )
    finally:
        close()
    if args.json:
        print_json(report.as_dict())
        return 1 if report.failures else 0
    print_table(
        ["model", "version", "variant", "kind", "window", "status", "rows", "figures"],
        [
            [
                r.model,
                r.version,
                r.variant,
                r.kind,
                f"{r.window_start:%Y-%m-%d %H:%M}{' (provisional)' if r.provisional else ''}",
                r.status,
                r.rows,
                monitor.summarise(r),
            ]
            for r in report.results
        ],
    )
    for a in report.alerts:
        print(f"alert #{a.id} {a.kind} {a.subject}: {a.message}")
    for f in report.failures:
        print(f"failed: {f}", file=sys.stderr)
    if report.retrains:
        print(f"queued retraining runs: {', '.join(f'#{i}' for i in report.retrains)}")
    print(
        f"{report.windows} windows computed, {len(report.alerts)} alerts raised, "
        f"{len(report.failures)} failures"
    )
    return 1 if report.failures else 0
