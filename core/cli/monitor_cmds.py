"""``drift``, ``simulate`` and ``alerts``."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pandas as pd

from core.categories import CATEGORIES
from core.cli.common import actor, add_user_option, ready
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
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--users-per-day", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drift-from-day", type=int, help="summer drift episode from this day on")
    p.add_argument("--start", help="first day, YYYY-MM-DD (default: DAYS days ago)")
    add_user_option(p)
    p.set_defaults(handler=_simulate)

    p = sub.add_parser("alerts", help="open alerts")
    p.add_argument("--model")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_alerts)


def read_table(path: Path, side: str) -> pd.DataFrame:
    if not path.is_file():
        raise BadInput(f"{side} file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt"):
            # Only an empty cell is missing; "n/a" or "NaN" typed into a rating is text.
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        else:
            raise BadInput(f"{side} file {path.name} must be .csv or .parquet")
    except pd.errors.EmptyDataError as exc:
        raise BadInput(f"{side} file {path.name} is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        if isinstance(exc, BadInput):
            raise
        raise BadInput(f"{side} file {path.name} cannot be read: {exc}") from exc
    if frame.empty:
        raise BadInput(f"{side} file {path.name} has no rows")
    return frame


def _drift(args: argparse.Namespace) -> int:
    from core import drift

    reference = read_table(args.reference, "reference")
    current = read_table(args.current, "current")
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
        args.html.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.html.with_name(args.html.name + ".tmp")
        tmp.write_text(result.html or "", encoding="utf-8")
        tmp.replace(args.html)
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
    from core import simulate
    from core.generator import DriftEpisode

    start = None
    if args.start:
        try:
            start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise BadInput(f"--start must be YYYY-MM-DD, got {args.start!r}") from exc
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
    from core import alerts

    found = alerts.list_alerts(args.model, status=None if args.all else "open")
    if args.json:
        print_json([a.__dict__ for a in found])
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
