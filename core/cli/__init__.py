"""``python -m core``: the command line of DESIGN.md.

Each command group lives in its own module exposing ``register(subparsers)``; handlers return
an exit status. Exit 0 on success, 2 on bad input (a message on stderr naming the problem, no
traceback), 1 on any other failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from core.errors import BadInput, CoreError

# Modules that add commands, in the order they appear in --help.
COMMAND_MODULES = (
    "core.cli.registry_cmds",
    "core.cli.data_cmds",
    "core.cli.model_cmds",
    "core.cli.demo_cmds",
    "core.cli.monitor_cmds",
    "core.cli.jobs_cmds",
    "core.cli.users_cmds",
    "core.cli.artifacts_cmds",
    "core.cli.rollout_cmds",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message but without the traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Manage Planwise recommendation models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        status: int = args.handler(args)
        return status
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
