"""``data generate`` and ``data ingest``."""

from __future__ import annotations

import argparse
from pathlib import Path

from core import inputs
from core.cli.common import DAY, DAYS, MAX_USERS, SEED, actor, add_user_option, int_arg, ready
from core.cli.output import print_json
from core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    data = sub.add_parser("data", help="users datasets")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = dsub.add_parser("generate", help="write a file of generated users")
    p.add_argument("--users", type=int_arg(maximum=MAX_USERS), required=True)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--days", type=DAYS, default=30)
    p.add_argument(
        "--drift-from-day",
        type=DAY,
        default=None,
        help="switch on the summer drift episode from this day on",
    )
    p.add_argument("--out", type=Path, required=True, help=".csv or .parquet")
    p.set_defaults(handler=_generate)

    p = dsub.add_parser("ingest", help="validate and register a users file as a dataset version")
    p.add_argument("path", type=Path)
    p.add_argument("--name", required=True)
    add_user_option(p)
    p.set_defaults(handler=_ingest)

    p = dsub.add_parser("list", help="registered datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)


def _generate(args: argparse.Namespace) -> int:
    from core.data.generator import DriftEpisode, generate_users

    suffix = args.out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise BadInput(f"--out must end in .csv or .parquet, got {args.out.name!r}")
    inputs.prepare_output(args.out, "--out")
    drift = DriftEpisode(args.drift_from_day) if args.drift_from_day is not None else None
    frame = generate_users(args.users, seed=args.seed, days=args.days, drift=drift)
    with inputs.writing(args.out, "--out") as tmp:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
    print_json({"path": str(args.out), "rows": len(frame), "seed": args.seed})
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from core.data import datasets

    ready()
    info = datasets.ingest(args.path, name=args.name, actor=actor(args))
    print_json(info.as_dict())
    return 0


def _list(args: argparse.Namespace) -> int:
    from core.data import datasets

    ready()
    items = datasets.list_datasets()
    if args.json:
        print_json([d.as_dict() for d in items])
    else:
        for d in items:
            print(f"{d.label:<30} {d.rows:>8} rows  {d.sha256[:12]}  {d.created_at:%Y-%m-%d}")
    return 0
