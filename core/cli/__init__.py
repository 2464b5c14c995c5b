"""``python -m core``: the command line of DESIGN.md.

Each command group lives in its own module exposing ``register(subparsers)``; handlers return
an exit status. Exit 0 on success, 2 on bad input (a message on stderr naming the problem, no
traceback), 1 on any other failure.

Registering imports nothing heavy (no pandas, NumPy, SQLAlchemy, settings): each handler
imports what it uses, so ``--help`` and bad usage answer at once (bench/bench_cli_start.py).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TypeGuard

from core.errors import BadInput, CoreError

if TYPE_CHECKING:
    from sqlalchemy.exc import OperationalError

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
    "core.cli.integrations_cmds",
)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; print its message as the one line every other
    bad input gets (not the usage block before it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Manage Planwise recommendation models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or bad usage already reported on stderr
        return exc.code if isinstance(exc.code, int) else 2
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
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The machine's failure, wherever it struck; writers discard what they had begun.
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"error: no space left on the device{where}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not _database_unreachable(exc):
            raise
        from core.db import unavailable

        print(f"error: {unavailable(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _database_unreachable(exc: Exception) -> TypeGuard[OperationalError]:
    """SQLAlchemy's OperationalError (a query made outside core.db.transaction). Only a command
    that used the database can raise it, so SQLAlchemy is loaded by then: looked up, not
    imported, so that starting the command line does not load it."""
    module = sys.modules.get("sqlalchemy.exc")
    return module is not None and isinstance(exc, module.OperationalError)
