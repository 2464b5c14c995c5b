"""``import-mlflow`` and ``tokens``: the commands that connect the product to a team's stack.

``import-mlflow`` brings a model registered in MLflow into the registry (core.training.mlflow_sync);
``tokens`` issues, lists and revokes the per-account tokens of the management API
(core.accounts.tokens). A token's secret is printed once, on standard output, and never again.
"""

from __future__ import annotations

import argparse
from typing import get_args

from core.cli.common import LazyChoices, actor, add_choice_argument, add_user_option, int_arg, ready
from core.cli.output import print_json, print_table

ROLES = LazyChoices("core.accounts.auth", lambda auth: get_args(auth.Role))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "import-mlflow",
        help="register a model version of the MLflow server (MLFLOW_TRACKING_URI)",
    )
    p.add_argument("--model-uri", required=True, help="models:/NAME/VERSION")
    p.add_argument("--name", help="model name here (default: the MLflow model's name)")
    p.add_argument("--dataset", help="evaluate on this dataset (NAME[@VERSION])")
    p.add_argument("--description", default="")
    add_user_option(p)
    p.set_defaults(handler=_import_mlflow)

    tokens = sub.add_parser("tokens", help="API tokens of the management API: issue, list, revoke")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")

    p = tsub.add_parser("issue", help="issue a token for an account (its secret is shown once)")
    p.add_argument("name", help="the account the token acts for")
    add_choice_argument(p, "--role", choices=ROLES, help="at most the account's role (default: it)")
    p.add_argument(
        "--expires-days", type=int_arg(minimum=1, maximum=3650), help="default: never expires"
    )
    p.add_argument("--label", default="", help="what the token is for (e.g. 'ci: main branch')")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_issue)

    p = tsub.add_parser("list", help="every token: account, role, state, last use")
    p.add_argument("--user-name", dest="account", help="only this account's tokens")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_list)

    p = tsub.add_parser("revoke", help="revoke a token: refused from the next request on")
    p.add_argument("id", type=int_arg(minimum=1))
    add_user_option(p)
    p.set_defaults(handler=_revoke)


def _import_mlflow(args: argparse.Namespace) -> int:
    ready()
    from core.training import mlflow_sync

    v = mlflow_sync.import_mlflow(
        actor=actor(args),
        model_uri=args.model_uri,
        name=args.name,
        dataset=args.dataset,
        description=args.description,
    )
    lineage = v.metadata.get("mlflow", {})
    print_json(
        {
            "model": v.model,
            "version": v.version,
            "stage": v.stage,
            "family": v.family,
            "metrics": v.metrics,
            "mlflow": {k: lineage.get(k) for k in ("model_uri", "run_id", "flavour", "run_url")},
        }
    )
    return 0


def _issue(args: argparse.Namespace) -> int:
    ready()
    from core.accounts import tokens

    issued = tokens.issue(
        actor=actor(args),
        username=args.name,
        role=args.role,
        expires_days=args.expires_days,
        label=args.label,
    )
    if args.json:
        print_json({**issued.info.as_dict(), "token": issued.secret})
    else:
        info = issued.info
        expiry = "never" if info.expires_at is None else info.expires_at.isoformat()
        print(issued.secret)
        import sys

        print(
            f"token {info.id} for {info.username} ({info.role}), expires {expiry}; "
            "store it now: it is not shown again",
            file=sys.stderr,
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    ready()
    from core.accounts import tokens

    found = tokens.list_tokens(actor=actor(args), username=args.account)
    if args.json:
        print_json([t.as_dict() for t in found])
        return 0
    print_table(
        ["id", "user", "role", "state", "label", "hint", "expires", "last used"],
        [
            [
                t.id,
                t.username,
                t.role,
                t.state(),
                t.label,
                t.hint + "…",
                "never" if t.expires_at is None else t.expires_at.strftime("%Y-%m-%d %H:%M"),
                "-" if t.last_used_at is None else t.last_used_at.strftime("%Y-%m-%d %H:%M"),
            ]
            for t in found
        ],
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    ready()
    from core.accounts import tokens

    info = tokens.revoke(actor=actor(args), token_id=args.id)
    print_json(info.as_dict())
    return 0
