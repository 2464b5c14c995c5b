"""Helpers shared by the command modules: who is acting, and start-up."""

from __future__ import annotations

import argparse
import getpass

from core import auth, bootstrap


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
