"""``demo``: bootstrap a registry worth looking at."""

from __future__ import annotations

import argparse

from core.cli.common import actor, add_user_option, ready
from core.cli.output import print_json, progress_bar
from core.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="generated datasets, a version of every family, traffic")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=15, help="autoencoder epochs")
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
