"""``init``, ``models list/show``, ``promote``, ``rollback``, ``timeline``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core import inputs
from core.cli.common import actor, add_user_option, int_arg, ready
from core.cli.output import print_json, print_table
from core.errors import BadInput

if TYPE_CHECKING:
    from core import registry


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("init", help="create or upgrade the database")
    p.set_defaults(handler=_init)

    models = sub.add_parser("models", help="the registry's models and versions")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="models, or the versions of one model")
    p.add_argument("name", nargs="?", help="list this model's versions")
    p.add_argument("--stage", help="only versions in this stage")
    p.add_argument("--search", help="filter by text in name, version, description, author")
    p.add_argument("--page", type=int_arg(), default=1)
    p.add_argument("--page-size", type=int_arg(), default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_models_list)
    p = msub.add_parser("show", help="one version with metadata, lineage and metrics")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_models_show)

    p = sub.add_parser("promote", help="move a version to staging or production (gated)")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--stage", required=True, choices=["staging", "production"])
    p.add_argument("--reason", default="", help="why (required: it goes into the audit log)")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_promote)

    p = sub.add_parser(
        "rollback",
        help="production back to the last production version not itself rolled back from",
    )
    p.add_argument("name")
    p.add_argument(
        "--from",
        dest="from_version",
        metavar="VERSION",
        help="the version you are rolling back from; refused (exit 2) if production holds "
        "another one by now, so a retried or doubled rollback never undoes the first",
    )
    p.add_argument(
        "--to", dest="to_version", metavar="VERSION", help="an earlier production version instead"
    )
    p.add_argument("--reason", default="", help="why (required: it goes into the audit log)")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_rollback)

    p = sub.add_parser("timeline", help="the audit log of stage changes")
    p.add_argument("name", nargs="?")
    p.add_argument("--at", help="ISO time: print which version was in production then")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_timeline)


def _init(args: argparse.Namespace) -> int:
    from core.accounts import bootstrap

    report = bootstrap.ensure_ready()
    print(f"database at schema {', '.join(report.heads)}")
    if report.admin_password:
        print(
            "created user 'admin' with one-time password: "
            f"{report.admin_password}\n(change it at first sign-in)"
        )
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from core import registry

    ready()
    if args.name is None and args.stage is None and args.search is None:
        models = registry.list_models()
        if args.json:
            print_json(
                [
                    {
                        "name": m.name,
                        "family": m.family,
                        "production": m.production,
                        "staging": m.staging,
                        "latest": m.latest,
                        "versions": m.version_count,
                        "canary_share": m.canary_share,
                    }
                    for m in models
                ]
            )
        else:
            print_table(
                ["model", "family", "production", "staging", "latest", "versions"],
                [
                    (m.name, m.family, m.production, m.staging, m.latest, m.version_count)
                    for m in models
                ],
            )
        return 0
    page = registry.list_versions(
        model=args.name,
        stage=args.stage,
        search=args.search,
        page=args.page,
        page_size=args.page_size,
    )
    if args.json:
        print_json(
            {
                "total": page.total,
                "page": page.page,
                "page_size": page.page_size,
                "versions": [_version_summary(v) for v in page.items],
            }
        )
    else:
        print_table(
            ["model", "version", "stage", "family", "created", "by", "ndcg@5"],
            [
                (
                    v.model,
                    v.version,
                    v.stage,
                    v.family,
                    f"{v.created_at:%Y-%m-%d %H:%M}",
                    v.created_by,
                    _fmt(v.metrics.get("ndcg@5")),
                )
                for v in page.items
            ],
        )
        print(f"page {page.page} of {page.pages} ({page.total} versions)")
    return 0


def _version_summary(v: registry.VersionInfo) -> dict[str, object]:
    return {
        "model": v.model,
        "version": v.version,
        "stage": v.stage,
        "family": v.family,
        "created_at": v.created_at.isoformat(),
        "created_by": v.created_by,
        "metrics": v.metrics,
    }


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def _models_show(args: argparse.Namespace) -> int:
    from core import registry
    from core.registry import artifacts

    ready()
    v = registry.get_version(args.name, args.version)
    integrity = artifacts.check(v.artifact_dir, v.files)  # every file hashed, extras named
    if args.json:
        verdict = all(status == "ok" for status in integrity.values())
        print_json({**v.as_dict(), "integrity": integrity, "integrity_ok": verdict})
        return 0
    print(f"{v.model} {v.version}  [{v.stage}]  family {v.family}")
    print(f"created {v.created_at:%Y-%m-%d %H:%M:%S} UTC by {v.created_by}")
    if v.description:
        print(v.description)
    if v.dataset:
        print(f"dataset  {v.dataset.label}  sha256 {v.dataset.sha256}")
    if v.parent:
        print(f"parent   {v.parent[0]}@{v.parent[1]}")
    print(f"code     {v.metadata.get('code_revision', 'unknown')}")
    print(f"folder   {v.artifact_dir}")
    for name, sha in v.files.items():
        print(f"  {name:<20} {sha}  {integrity.get(name, '?')}")
    for name in sorted(n for n, status in integrity.items() if status == "unlisted"):
        print(f"  {name:<20} {'not in the registry':<64}  unlisted")
    bad = sorted(n for n, status in integrity.items() if status != "ok")
    print(f"integrity {'ok' if not bad else 'FAILED: ' + ', '.join(bad)}")
    if v.metrics:
        print("metrics")
        for k, val in v.metrics.items():
            print(f"  {k:<16} {_fmt(val)}")
    if v.hyperparameters:
        print("hyperparameters")
        for k, val in v.hyperparameters.items():
            print(f"  {k:<16} {val}")
    return 0


def _print_change(change: registry.StageChange, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "event": change.event.as_dict(),
                "gates": change.gates,
                "displaced": None if change.displaced is None else change.displaced.as_dict(),
            }
        )
        return
    ev = change.event
    print(f"{ev.model} {ev.version}: {ev.from_stage} → {ev.to_stage} ({ev.action} by {ev.actor})")
    if change.displaced:
        print(
            f"{change.displaced.model} {change.displaced.version}: "
            f"{change.displaced.from_stage} → {change.displaced.to_stage}"
        )
    for g in change.gates:
        print(f"  gate {g['name']:<10} {'pass' if g['passed'] else 'FAIL'}  {g['detail']}")


def _promote(args: argparse.Namespace) -> int:
    from core import registry

    ready()
    change = registry.promote(
        actor=actor(args),
        model=args.name,
        version=args.version,
        stage=args.stage,
        reason=args.reason,
    )
    _print_change(change, args.json)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from core import registry

    ready()
    change = registry.rollback(
        actor=actor(args),
        model=args.name,
        reason=args.reason,
        expected_from=args.from_version,
        to_version=args.to_version,
    )
    rolled_from = None if change.displaced is None else change.displaced.version
    if args.json:
        print_json(
            {
                "model": args.name,
                "from": rolled_from,
                "to": change.event.version,
                "event": change.event.as_dict(),
                "gates": change.gates,
                "displaced": None if change.displaced is None else change.displaced.as_dict(),
            }
        )
        return 0
    print(f"rolled back {args.name} from {rolled_from} to {change.event.version}")
    for g in change.gates:
        print(f"  gate {g['name']:<10} {'pass' if g['passed'] else 'FAIL'}  {g['detail']}")
    return 0


def _timeline(args: argparse.Namespace) -> int:
    from core import registry

    ready()
    if args.at:
        if not args.name:
            raise BadInput("--at needs a model name")
        when = inputs.parse_time(args.at, "--at")
        version = registry.production_at(args.name, when)
        if args.json:
            print_json({"model": args.name, "at": when.isoformat(), "production": version})
        else:
            print(version or f"no production version at {when.isoformat()}")
        return 0
    events = registry.timeline(args.name)
    if args.json:
        print_json([e.as_dict() for e in events])
    else:
        print_table(
            ["time (UTC)", "model", "version", "action", "from", "to", "by", "reason"],
            [
                (
                    f"{e.created_at:%Y-%m-%d %H:%M:%S}",
                    e.model,
                    e.version,
                    e.action,
                    e.from_stage,
                    e.to_stage,
                    e.actor,
                    e.reason,
                )
                for e in events
            ],
        )
    return 0
