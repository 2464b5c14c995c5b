"""``demo``: bootstrap a registry worth looking at."""

from __future__ import annotations

import argparse

from core.cli.common import DAYS, SEED, actor, add_user_option, int_arg, ready
from core.cli.output import print_json, progress_bar
from core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="generated datasets, a version of every family, traffic")
    p.add_argument("--users", type=int_arg(minimum=100, maximum=1_000_000), default=5000)
    p.add_argument("--days", type=DAYS, default=30)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--epochs", type=int_arg(maximum=10_000), default=15, help="autoencoder epochs")
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing when the registry already has models"
    )
    add_user_option(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    ready()
    from core import demo, registry

    if args.users < 100:
        raise BadInput(f"--users must be at least 100, got {args.users}")
    if args.if_empty and registry.list_models():
        print_json({"skipped": "the registry already holds models"})
        return 0
    update, close = progress_bar("demo")
    try:
        report = demo.run(
            actor=actor(args),
            users=args.users,
            days=args.days,
            seed=args.seed,
            epochs=args.epochs,
            progress=update,
        )
    finally:
        close()
    print_json(
        {
            "datasets": report.datasets,
            "versions": report.versions,
            "production": report.production,
            "notes": report.notes,
        }
    )
    return 0
