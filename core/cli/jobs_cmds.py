"""``schedule set/list/pause/resume/delete``, ``retrain`` and ``runs list/show``.

These only write rows: the worker (``python -m jobs.worker``) mirrors schedules into its
scheduler within seconds and picks queued runs up from the database.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from core import inputs
from core.cli.common import LazyChoices, actor, add_choice_argument, add_user_option, int_arg, ready
from core.cli.output import print_json, print_table

if TYPE_CHECKING:
    from core.retraining import schedules


# The tables' own tuples, read when a command needs them (not to start the command line).
POLICIES = LazyChoices("core.db.tables", lambda tables: tables.POLICIES)
STATUSES = LazyChoices("core.db.tables", lambda tables: tables.STATUSES)
TRIGGERS = LazyChoices("core.db.tables", lambda tables: tables.TRIGGERS)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sched = sub.add_parser("schedule", help="retraining schedules (run by the worker)")
    ssub = sched.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    p = ssub.add_parser("set", help="create or change a model's retraining schedule")
    p.add_argument("name", help="the model")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--cron", metavar="EXPR", help="5-field cron expression, in UTC")
    when.add_argument("--every", type=int, metavar="SECONDS", help="an interval in seconds")
    p.add_argument("--dataset", help="NAME (its latest version at run time) or NAME@VERSION")
    p.add_argument("--family", help="the family to train (default: the model's)")
    add_choice_argument(
        p,
        "--policy",
        choices=POLICIES,
        help="what to do with the new version: keep it a candidate (default), move it to "
        "staging when the gates pass, or to production when it beats production by --margin",
    )
    p.add_argument("--margin", type=float, help="improvement needed by the production policy")
    p.add_argument("--metric", help="metric the production policy compares (default ndcg@5)")
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a hyperparameter (repeatable; replaces the schedule's hyperparameters)",
    )
    p.add_argument(
        "--drift-cooldown", type=int, metavar="SECONDS", help="minimum gap between drift retrains"
    )
    p.add_argument("--description")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_set)

    p = ssub.add_parser("list", help="schedules with their next run")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)

    for action, helptext in (
        ("pause", "stop firing a schedule"),
        ("resume", "fire again (from the next fire time after now)"),
        ("delete", "remove a schedule"),
    ):
        p = ssub.add_parser(action, help=helptext)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")
        add_user_option(p)
        p.set_defaults(handler=_change, action=action)

    p = sub.add_parser("retrain", help="queue a retraining run now (the worker picks it up)")
    p.add_argument("name", help="the model")
    p.add_argument("--dataset", help="train on this dataset instead of the schedule's")
    p.add_argument("--reason", default="", help="why (kept with the run)")
    p.add_argument("--json", action="store_true")
    add_user_option(p)
    p.set_defaults(handler=_retrain)

    r = sub.add_parser("runs", help="training runs: queued, running and finished")
    rsub = r.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    p = rsub.add_parser("list", help="runs, newest first")
    p.add_argument("--model")
    add_choice_argument(p, "--status", choices=STATUSES)
    add_choice_argument(p, "--trigger", choices=TRIGGERS)
    p.add_argument("--limit", type=int_arg(), default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_runs_list)
    p = rsub.add_parser("show", help="one run with its log")
    p.add_argument("id", type=int_arg())
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_runs_show)


def _set(args: argparse.Namespace) -> int:
    from core.retraining import schedules

    ready()
    info = schedules.set_schedule(
        actor=actor(args),
        model=args.name,
        cron=args.cron,
        every_s=args.every,
        dataset=args.dataset,
        family=args.family,
        params=None if args.param is None else inputs.parse_key_values(args.param),
        policy=args.policy,
        margin=args.margin,
        metric=args.metric,
        drift_cooldown_s=args.drift_cooldown,
        description=args.description,
    )
    if args.json:
        print_json(info.as_dict())
    else:
        print(f"{info.model}: {_describe(info)} (revision {info.revision})")
    _worker_note()
    return 0


def _describe(info: schedules.ScheduleInfo) -> str:
    params = " ".join(f"{k}={v}" for k, v in info.params.items())
    return (
        f"{info.family} {info.when} on {info.dataset}, policy {info.policy}"
        + (f" (margin {info.margin:g} on {info.metric})" if info.policy == "production" else "")
        + (f", {params}" if params else "")
        + (", paused" if info.paused else "")
    )


def _list(args: argparse.Namespace) -> int:
    from core.retraining import schedules

    ready()
    items = schedules.list_schedules()
    if args.json:
        print_json([s.as_dict() for s in items])
        return 0
    if not items:
        print("no schedules; add one with `python -m core schedule set NAME --every SECONDS`")
        return 0
    print_table(
        ["model", "family", "when", "dataset", "policy", "state", "next run (UTC)"],
        [
            [
                s.model,
                s.family,
                s.when,
                s.dataset,
                s.policy,
                "paused" if s.paused else ("active" if s.in_sync else "waiting for worker"),
                ""
                if s.next_run_at is None or not s.in_sync
                else f"{s.next_run_at:%Y-%m-%d %H:%M:%S}",
            ]
            for s in items
        ],
    )
    _worker_note()
    return 0


def _change(args: argparse.Namespace) -> int:
    from core.retraining import schedules

    ready()
    who = actor(args)
    if args.action == "delete":
        schedules.delete_schedule(actor=who, model=args.name)
        if args.json:
            print_json({"model": args.name, "deleted": True})
        else:
            print(f"{args.name}: schedule deleted")
        return 0
    change = schedules.pause if args.action == "pause" else schedules.resume
    info = change(actor=who, model=args.name)
    if args.json:
        print_json(info.as_dict())
    else:
        print(f"{info.model}: {'paused' if info.paused else 'active'} ({info.when})")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from core.retraining import queue

    ready()
    result = queue.queue_retrain(
        args.name, "manual", args.reason, actor=actor(args), dataset=args.dataset
    )
    if args.json:
        print_json(result.as_dict())
    else:
        print(f"{args.name}: {result.note}")
    _worker_note()
    return 0


def _runs_list(args: argparse.Namespace) -> int:
    from core.retraining import runs

    ready()
    items = runs.list_runs(
        model=args.model, status=args.status, trigger=args.trigger, limit=args.limit
    )
    if args.json:
        print_json([r.as_dict(with_log=False) for r in items])
        return 0
    print_table(
        ["id", "model", "trigger", "status", "queued (UTC)", "duration", "version", "outcome"],
        [
            [
                r.id,
                r.model,
                r.trigger,
                r.status,
                f"{r.queued_at:%Y-%m-%d %H:%M:%S}",
                "" if r.duration_s is None else f"{r.duration_s:.1f} s",
                r.version or "",
                (r.error or r.outcome)[:60],
            ]
            for r in items
        ],
    )
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    from core.retraining import runs

    ready()
    run = runs.get_run(args.id)
    if args.json:
        print_json(run.as_dict())
        return 0
    for key, value in run.as_dict(with_log=False).items():
        if value not in (None, "", {}, []):
            print(f"{key:<14} {value}")
    print("log:")
    sys.stdout.write(run.log or "(empty)\n")
    return 0


def _worker_note() -> None:
    """Say on stderr (JSON on stdout stays clean) when no worker is running: the change takes
    effect only once one starts."""
    from core.db import utcnow
    from core.retraining import leader

    status = leader.current_worker()
    if status is None or not status.alive(utcnow()):
        print(
            "note: no worker is running; start one with `python -m jobs.worker`",
            file=sys.stderr,
        )
