"""``schedule``, ``retrain`` and ``runs`` on the command line: exit codes, JSON, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.cli import main
from core.data.datasets import DatasetInfo
from core.retraining import runs
from tests.conftest import PROJECT_ROOT


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_schedule_commands(backend, dataset: DatasetInfo, capsys) -> None:
    status, out, err = cli(capsys, "schedule", "list")
    assert status == 0 and "no schedules" in out

    status, out, err = cli(
        capsys,
        "schedule", "set", "recsys", "--every", "3600", "--family", "popularity",
        "--dataset", dataset.name, "--param", "shrinkage=2", "--policy", "staging", "--json",
    )  # fmt: skip
    assert status == 0, err
    made = json.loads(out)
    assert made["every_s"] == 3600 and made["params"] == {"shrinkage": 2.0}
    assert made["policy"] == "staging" and made["revision"] == 1
    assert "no worker is running" in err  # nothing fires until one starts

    status, out, err = cli(capsys, "schedule", "set", "recsys", "--cron", "0 3 * * mon")
    assert status == 0 and "cron 0 3 * * mon" in out and "revision 2" in out

    status, out, err = cli(capsys, "schedule", "pause", "recsys")
    assert status == 0 and "paused" in out
    status, out, _ = cli(capsys, "schedule", "list", "--json")
    listed = json.loads(out)
    assert [(s["model"], s["paused"], s["cron"]) for s in listed] == [
        ("recsys", True, "0 3 * * mon")
    ]
    status, out, _ = cli(capsys, "schedule", "resume", "recsys", "--json")
    assert status == 0 and json.loads(out)["paused"] is False
    status, out, _ = cli(capsys, "schedule", "list")
    assert "recsys" in out and "waiting for worker" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedule", "set", "recsys", "--cron", "0 3 * *", "--family", "popularity"], "5 fields"),
        (["schedule", "set", "recsys", "--every", "60"], "give the family"),
        (
            [
                "schedule",
                "set",
                "recsys",
                "--every",
                "60",
                "--family",
                "popularity",
                "--param",
                "shrinkage",
            ],
            "KEY=VALUE",
        ),  # fmt: skip
        (["schedule", "pause", "nobody"], "no retraining schedule"),
        (["retrain", "nobody"], "unknown model"),
        (["runs", "show", "999"], "unknown training run 999"),
    ],
)
def test_bad_input_exits_2_with_a_message(backend, capsys, args: list[str], message: str) -> None:
    status, out, err = cli(capsys, *args)
    assert status == 2 and message in err and "Traceback" not in err
    assert out == ""


def test_retrain_queues_and_runs_lists(backend, dataset: DatasetInfo, capsys) -> None:
    cli(capsys, "schedule", "set", "recsys", "--every", "60", "--family", "popularity",
        "--dataset", dataset.name)  # fmt: skip
    status, out, err = cli(capsys, "retrain", "recsys", "--reason", "new data", "--json")
    assert status == 0, err
    queued = json.loads(out)
    assert queued["created"] and queued["status"] == "queued" and queued["trigger"] == "manual"
    status, out, _ = cli(capsys, "retrain", "recsys")
    assert status == 0 and "already queued" in out

    runs.finish(
        runs.claim(queued["run_id"], worker_id="w").id,
        worker_id="w",
        status="succeeded",
        log_tail="trained\n",
        version="1.0.0",
        outcome="registered 1.0.0 as a candidate",
    )
    status, out, _ = cli(capsys, "runs", "list", "--json")
    listed = json.loads(out)
    assert [(r["id"], r["status"], r["version"]) for r in listed] == [
        (queued["run_id"], "succeeded", "1.0.0")
    ]
    assert "log" not in listed[0] and listed[0]["duration_s"] is not None
    status, out, _ = cli(capsys, "runs", "list")
    assert "succeeded" in out and "registered 1.0.0" in out
    status, out, _ = cli(capsys, "runs", "show", str(queued["run_id"]))
    assert status == 0 and "new data" in out and "trained" in out
    status, out, _ = cli(capsys, "runs", "list", "--status", "queued", "--json")
    assert json.loads(out) == []


def test_commands_are_in_the_real_entry_point(sqlite_backend) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "core", "runs", "list", "--json"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **sqlite_backend.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
