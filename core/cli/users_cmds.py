"""``users``: accounts from the shell, the recovery path when nobody can sign in as admin.

The shell that runs these already holds the database credentials, so without ``--user`` they
act with full rights, like every other command; the rules still live in :mod:`core.accounts.auth`
(the last active admin can be neither demoted nor disabled, the password policy).
"""

from __future__ import annotations

import argparse
import sys
from typing import get_args

from core.cli.common import LazyChoices, actor, add_choice_argument, add_user_option, ready
from core.cli.output import print_json, print_table
from core.errors import BadInput

ROLES = LazyChoices("core.accounts.auth", lambda auth: get_args(auth.Role))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    users = sub.add_parser("users", help="accounts: list, add, roles, disable, reset passwords")
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    p = usub.add_parser("list", help="every account with its role and state")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_list)

    p = usub.add_parser("add", help="create an account (it must change its password first)")
    p.add_argument("name")
    add_choice_argument(p, "--role", required=True, choices=ROLES)
    p.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the one-time password from standard input (never from the command line, "
        "where other users of the machine could see it)",
    )
    add_user_option(p)
    p.set_defaults(handler=_add)

    p = usub.add_parser("set-role", help="change an account's role")
    p.add_argument("name")
    add_choice_argument(p, "role", choices=ROLES)
    add_user_option(p)
    p.set_defaults(handler=_set_role)

    for action, disabled, text in (
        ("disable", True, "stop an account from signing in (its sessions end)"),
        ("enable", False, "let a disabled account sign in again"),
    ):
        p = usub.add_parser(action, help=text)
        p.add_argument("name")
        add_user_option(p)
        p.set_defaults(handler=_set_disabled, disabled=disabled)

    p = usub.add_parser(
        "reset-password", help="give an account a new one-time password (printed once)"
    )
    p.add_argument("name")
    add_user_option(p)
    p.set_defaults(handler=_reset)


def _list(args: argparse.Namespace) -> int:
    from core.accounts import auth

    ready()
    accounts = auth.list_users(actor=actor(args))
    if args.json:
        print_json(
            [
                {
                    "username": u.username,
                    "role": u.role,
                    "disabled": u.disabled,
                    "must_change_password": u.must_change_password,
                    "locked_until": None if u.locked_until is None else u.locked_until.isoformat(),
                    "created_at": u.created_at.isoformat(),
                }
                for u in accounts
            ]
        )
        return 0
    print_table(
        ["user", "role", "state", "created (UTC)"],
        [
            (
                u.username,
                u.role,
                "disabled"
                if u.disabled
                else ("must change password" if u.must_change_password else "active"),
                f"{u.created_at:%Y-%m-%d %H:%M}",
            )
            for u in accounts
        ],
    )
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        print("one-time password (then Enter): ", end="", file=sys.stderr, flush=True)
    try:
        line = sys.stdin.readline()
    except UnicodeDecodeError:
        raise BadInput("the password on standard input is not valid text") from None
    if not line:
        raise BadInput("no password on standard input (give it with --password-stdin)")
    return line.removesuffix("\n").removesuffix("\r")


def _add(args: argparse.Namespace) -> int:
    from core.accounts import auth

    ready()
    password = _read_password()
    info = auth.create_user(
        actor=actor(args),
        username=args.name,
        password=password,
        role=args.role,
        must_change_password=True,
    )
    print(f"created user {info.username!r} ({info.role}); they choose a new password at sign-in")
    return 0


def _set_role(args: argparse.Namespace) -> int:
    from core.accounts import auth

    ready()
    info = auth.set_role(actor=actor(args), username=args.name, role=args.role)
    print(f"{info.username} is now {info.role}")
    return 0


def _set_disabled(args: argparse.Namespace) -> int:
    from core.accounts import auth

    ready()
    info = auth.set_disabled(actor=actor(args), username=args.name, disabled=args.disabled)
    print(f"{info.username} is {'disabled' if info.disabled else 'enabled'}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    from core.accounts import auth

    ready()
    password = auth.reset_password(actor=actor(args), username=args.name)
    print(f"new one-time password for {args.name}: {password}")
    print("(they must choose their own at the next sign-in)", file=sys.stderr)
    return 0
