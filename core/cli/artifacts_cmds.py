"""``artifacts sweep``: move aside this registry's unfinished artifact writes, on request."""

from __future__ import annotations

import argparse

from core.cli.common import actor, add_user_option
from core.cli.output import print_json, print_table

# core.registry.orphans.DEFAULT_SWEEP_AGE_S in minutes, written out so that registering the
# command need not load the artifact store and its settings (tests/core/cli/test_cli_start.py
# keeps the two equal).
DEFAULT_OLDER_THAN_MIN = 60.0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("artifacts", help="the artifact folders")
    asub = p.add_subparsers(dest="artifacts_command", required=True, metavar="ACTION")
    p = asub.add_parser(
        "sweep",
        help="move aside version folders this registry published but never registered",
        description=(
            "Moves a folder to .orphans/<family>/<model>/v<version>.<time>-<id> (with a .json "
            "manifest beside it) only when its marker proves it is this registry's own "
            "unfinished write, older than --older-than, by a process that is gone. Every "
            "other folder is listed with the reason it was left."
        ),
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be done")
    p.add_argument(
        "--older-than",
        type=float,
        default=DEFAULT_OLDER_THAN_MIN,
        metavar="MIN",
        help="only folders written at least this many minutes ago (default: %(default)g)",
    )
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from core.registry import artifact_sweep, artifacts

    entries = artifact_sweep.sweep(
        actor=actor(args), older_than_minutes=args.older_than, dry_run=args.dry_run
    )
    if args.json:
        print_json([e.as_dict() for e in entries])
    elif entries:
        print_table(
            ["folder", "action", "moved to", "reason"],
            [(e.folder, e.action, e.moved_to or "", e.reason) for e in entries],
        )
    else:
        print(f"nothing to sweep under {artifacts.location()}")
    return 0
