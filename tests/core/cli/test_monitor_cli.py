"""``drift``, ``simulate`` and ``alerts`` as scripts call them: JSON, files, exit codes, messages.

The successful ``drift`` run goes through a real process (``python -m core``), as a script
would; the bad-input cases call the same entry point in-process (``core.cli.main``), which
returns the exit status and prints the same messages, without paying for a process each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from core.data.generator import generate_users
from tests.conftest import PROJECT_ROOT
from tests.fixtures.drift import SHIFTED, shifted
from tests.fixtures.models import monitored_model


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference users file, a current one with three shifted categories, and bad ones."""
    root = tmp_path_factory.mktemp("drift-files")
    ref = generate_users(1500, seed=1)
    cur = shifted(generate_users(1500, seed=2))
    out = {"reference": root / "reference.csv", "current": root / "current.parquet"}
    ref.to_csv(out["reference"], index=False)
    cur.to_parquet(out["current"], index=False)
    text = cur.astype({"museums": object})
    text.loc[6, "museums"] = "lots"
    out["text"] = root / "text.csv"
    text.to_csv(out["text"], index=False)
    out["reference_text"] = root / "reference-text.csv"
    ref.astype({"zoo": object}).assign(zoo=lambda f: f["zoo"].where(f.index != 3, "n/a")).to_csv(
        out["reference_text"], index=False
    )
    out["missing_column"] = root / "no-zoo.csv"
    cur.drop(columns=["zoo"]).to_csv(out["missing_column"], index=False)
    out["empty"] = root / "empty.csv"
    out["empty"].write_bytes(b"")
    out["header_only"] = root / "header.csv"
    cur.head(0).to_csv(out["header_only"], index=False)
    out["json"] = root / "users.json"
    out["json"].write_text("[]")
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_drift_prints_the_documented_json_and_writes_the_report(files, tmp_path: Path) -> None:
    html = tmp_path / "out" / "report.html"
    proc = run_cli(
        "drift", str(files["reference"]), str(files["current"]), "--json", "--html", str(html)
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"columns", "drift_share", "dataset_drift"} <= set(out)
    assert len(out["columns"]) == 29
    for column, d in out["columns"].items():
        assert set(d) == {"drifted", "method", "score", "threshold"}, column
        assert isinstance(d["drifted"], bool) and isinstance(d["score"], float)
        assert d["method"] == "wasserstein" and d["threshold"] == 0.3
    assert {c for c, d in out["columns"].items() if d["drifted"]} == set(SHIFTED)
    assert out["drift_share"] == pytest.approx(3 / 29) and out["dataset_drift"] is False
    assert html.stat().st_size > 100_000
    assert "beaches" in html.read_text(encoding="utf-8")
    assert not list(html.parent.glob("*.tmp"))


def test_drift_table_and_chosen_columns(files, capsys) -> None:
    status = main(
        ["drift", str(files["reference"]), str(files["current"]), "--columns", "beaches, parks"]
    )
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["column", "drifted", "method", "score", "threshold"]
    assert any(line.startswith("beaches") and "yes" in line for line in lines)
    assert any(line.startswith("parks") and "yes" not in line for line in lines)
    assert "drift share 0.50; dataset drift: True" in out


BAD = [
    (("missing", "current"), "reference file", "does not exist"),
    (("reference", "missing"), "current file", "does not exist"),
    (("reference", "missing_column"), "current file no-zoo.csv lacks the column(s) 'zoo'", ""),
    (("reference", "text"), "column 'museums' of the current data holds text", "'lots'"),
    (("empty", "current"), "reference file empty.csv is empty", ""),
    (("reference", "header_only"), "current file header.csv has no rows", ""),
    (("reference", "json"), "users.json must be .csv or .parquet", ""),
]


@pytest.mark.parametrize(("names", "message", "detail"), BAD, ids=[b[1][:30] for b in BAD])
def test_drift_bad_input_exits_2_naming_the_problem(
    files, capsys, names: tuple[str, str], message: str, detail: str
) -> None:
    paths = [str(files.get(n, files["reference"].parent / "nowhere.csv")) for n in names]
    status = main(["drift", *paths, "--json"])
    captured = capsys.readouterr()
    assert status == 2
    assert message in captured.err and detail in captured.err, captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_drift_bad_columns_option(files, capsys) -> None:
    status = main(["drift", str(files["reference"]), str(files["current"]), "--columns", "nope"])
    assert status == 2
    assert "lacks the column(s) 'nope'" in capsys.readouterr().err
    status = main(["drift", str(files["reference"]), str(files["current"]), "--columns", " , "])
    assert status == 2
    assert "--columns lists no column" in capsys.readouterr().err


def test_drift_text_in_the_reference_file_is_refused(files, capsys) -> None:
    status = main(["drift", str(files["reference_text"]), str(files["current"]), "--json"])
    assert status == 2
    assert "column 'zoo' of the reference data holds text" in capsys.readouterr().err


def test_the_bad_input_path_is_the_same_in_a_real_process(files) -> None:
    proc = run_cli("drift", str(files["reference"]), str(files["text"]))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: column 'museums' of the current data holds text")
    assert "Traceback" not in proc.stderr


def test_simulate_and_alerts(sqlite_backend, tmp_path: Path, capsys) -> None:
    monitored_model(tmp_path, users=200, window_minutes=24 * 60, min_rows=30)

    args = ["--days", "4", "--users-per-day", "60", "--drift-from-day", "2"]
    status = main(["simulate", "recsys", *args, "--start", "2026-06-01"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (out["model"], out["days"], out["requests"], out["drift_results"]) == (
        "recsys",
        4,
        240,
        4 + 4,  # data and prediction drift of each day, computed by the monitoring job
    )
    assert out["summary"].startswith("recsys: 240 requests over 4 days")

    assert main(["alerts", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == out["alerts"] > 0
    assert {a["model"] for a in listed} == {"recsys"} and {a["status"] for a in listed} == {"open"}
    assert main(["alerts", "--model", "other", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["alerts"]) == 0
    assert "feature_drift" in capsys.readouterr().out

    bad = [
        (["simulate", "nothing", "--days", "1"], "nothing"),
        (["simulate", "recsys", "--start", "June"], "--start must be YYYY-MM-DD"),
        (["simulate", "recsys", "--days", "0"], "--days: the value must be between 1 and"),
    ]
    for argv, message in bad:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err


def test_monitor_run_computes_due_windows_and_alerts_list_their_figures(
    sqlite_backend, tmp_path: Path, capsys
) -> None:
    import datetime as dt

    import numpy as np

    from core import monitoring
    from core.data.categories import CATEGORIES
    from core.data.generator import DriftEpisode
    from core.monitoring import monitor
    from core.serving import predict

    version = monitored_model(tmp_path, users=600, window_minutes=1, min_rows=50).version
    summer = generate_users(300, seed=2, drift=DriftEpisode(0))[list(CATEGORIES)].to_numpy(float)
    loaded = predict.load("recsys")
    now = dt.datetime.now(dt.UTC)
    start = monitor.align(now, dt.timedelta(minutes=1)) - dt.timedelta(minutes=2)
    monitoring.write_batch(
        [
            monitoring.PredictionRecord(
                model="recsys",
                version=version,
                variant="production",
                ratings=prefs.tolist(),
                k=3,
                places=["a", "b", "c"],
                categories=["beaches", "museums", "zoo"],
                scores=[0.9, 0.8, 0.7],
                latency_ms=2.0,
                predicted=loaded.model.predict(prefs[None, :], prefs[None, :] > 0)[0].tolist(),
                ts=start + dt.timedelta(seconds=0.2 * i),
            )
            for i, prefs in enumerate(summer)
        ]
        + [
            monitoring.PredictionRecord(
                model="recsys",
                version=version,
                variant="production",
                ratings=[1.0] * 29,
                k=0,
                places=[],
                categories=[],
                scores=[],
                latency_ms=2.0,
                ts=max(now, start + dt.timedelta(minutes=2)) + dt.timedelta(seconds=1),
            )
        ]
    )
    done = run_cli("monitor", "run", "--model", "recsys", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    kinds = {(r["kind"], r["status"], r["provisional"]) for r in report["results"]}
    assert ("data", "ok", False) in kinds and ("traffic", "ok", False) in kinds
    data = next(r for r in report["results"] if r["kind"] == "data" and r["status"] == "ok")
    assert {"beaches", "swimming pools"} <= set(data["figures"]["drifted_columns"])
    raised = {a["subject"]: a for a in report["alerts"]}
    assert raised["data:beaches"]["columns"] == ["beaches"]
    assert raised["data:beaches"]["figures"]["value"] > 0.3
    # Nothing is due twice; --now adds the current window, provisional.
    again = run_cli("monitor", "run", "--model", "recsys", "--now", "--json")
    assert again.returncode == 0, again.stderr
    current = json.loads(again.stdout)["results"]
    assert any(r["provisional"] for r in current)  # (a window may also have closed since)
    assert all(r["window_start"] > data["window_start"] for r in current)
    # alerts --json: kind, model, version, variant, columns and figures.
    assert main(["alerts", "--json"]) == 0
    listed = {a["subject"]: a for a in json.loads(capsys.readouterr().out)}
    beach = listed["data:beaches"]
    assert (beach["kind"], beach["model"], beach["version"], beach["variant"]) == (
        "feature_drift",
        "recsys",
        version,
        "production",
    )
    assert beach["columns"] == ["beaches"] and beach["figures"]["threshold"] == 0.3
    # The table for people, and one clear line for an unknown model.
    table = run_cli("monitor", "run")
    assert table.returncode == 0 and "windows computed" in table.stdout
    assert main(["monitor", "run", "--model", "nope"]) == 2
    assert "no model named 'nope'" in capsys.readouterr().err
    assert np.isfinite(data["cpu_s"])
