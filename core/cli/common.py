"""Helpers shared by the command modules: who is acting, and start-up."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable

from core import inputs
from core.accounts import auth, bootstrap
from core.errors import BadInput

# Upper bounds of the counts the commands take: far above any real use, far below what would
# overflow a C integer or exhaust memory before the command could say no.
MAX_DAYS = 3660
MAX_USERS = 10_000_000


def int_arg(*, minimum: int = 1, maximum: int = inputs.DB_INT_MAX) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number within bounds (core's rule, argparse's exit 2)."""

    def parse(text: str) -> int:
        try:
            return inputs.bounded_int(text, "the value", minimum=minimum, maximum=maximum)
        except BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = "whole number"  # argparse names the type in "invalid ... value"
    return parse


SEED = int_arg(minimum=0, maximum=inputs.SEED_MAX)
DAYS = int_arg(minimum=1, maximum=MAX_DAYS)
DAY = int_arg(minimum=0, maximum=MAX_DAYS)


def add_user_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user",
        help="act as this registered account (its role is checked); "
        "default: the local shell user, with full rights",
    )


def actor(args: argparse.Namespace) -> auth.Actor:
    """The named account, or the local shell user, who already holds the database."""
    if getattr(args, "user", None):
        return auth.actor_for(args.user)
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "local"
    return auth.Actor(f"cli:{name}"[:64], "admin")


def ready() -> None:
    """Bring the schema up to date; print the one-time admin password if one was made."""
    report = bootstrap.ensure_ready()
    if report.admin_password:
        import sys

        print(
            f"created user 'admin' with one-time password: {report.admin_password}", file=sys.stderr
        )
