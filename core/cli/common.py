"""Helpers shared by the command modules: who is acting, and start-up."""

from __future__ import annotations

import argparse
import getpass
import importlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from core import inputs
from core.errors import BadInput

if TYPE_CHECKING:
    from core.accounts import auth

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


class LazyChoices:
    """An argparse ``choices`` read from a core module the first time argparse needs it (to
    check a value, or for the help of the one command that has it), so that registering every
    command imports none of the modules that define them (SQLAlchemy's tables, the accounts)."""

    def __init__(self, module: str, read: Callable[[ModuleType], tuple[str, ...]]) -> None:
        self._module = module
        self._read = read
        self._values: tuple[str, ...] | None = None

    def values(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = self._read(importlib.import_module(self._module))
        return self._values

    def __contains__(self, value: object) -> bool:
        return value in self.values()

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())


def add_choice_argument(
    parser: argparse.ArgumentParser, *names: str, choices: LazyChoices, **kwargs: Any
) -> argparse.Action:
    """``parser.add_argument(*names, choices=choices, **kwargs)``, with the choices set after
    argparse's check of the new argument's metavar, which would read them at once."""
    action = parser.add_argument(*names, **kwargs)
    action.choices = choices
    return action


def add_user_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user",
        help="act as this registered account (its role is checked); "
        "default: the local shell user, with full rights",
    )


def actor(args: argparse.Namespace) -> auth.Actor:
    """The named account, or the local shell user, who already holds the database."""
    from core.accounts import auth

    if getattr(args, "user", None):
        return auth.actor_for(args.user)
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "local"
    return auth.Actor(f"cli:{name}"[:64], "admin")


def ready() -> None:
    """Bring the schema up to date; print the one-time admin password if one was made."""
    from core.accounts import bootstrap

    report = bootstrap.ensure_ready()
    if report.admin_password:
        import sys

        print(
            f"created user 'admin' with one-time password: {report.admin_password}", file=sys.stderr
        )
