"""The command line as ops and scripts meet it: exit codes, JSON, messages."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROJECT_ROOT, tree_snapshot


def test_init_ingest_list_promote_rollback(cli) -> None:
    out = cli("init", check=True)
    assert "one-time password" in out.stdout
    assert "one-time password" not in cli("init", check=True).stdout
    users = cli.root / "users.csv"
    gen = json.loads(
        cli(
            "data", "generate", "--users", "300", "--seed", "4", "--out", str(users), check=True
        ).stdout
    )
    assert gen["rows"] == 300
    ds = json.loads(cli("data", "ingest", str(users), "--name", "madrid", check=True).stdout)
    assert {"name", "version", "sha256", "rows"} <= ds.keys()
    assert (ds["name"], ds["version"], ds["rows"]) == ("madrid", 1, 300)

    # Register two versions through the library, then drive stages from the CLI.
    code = (
        "from core import registry\nfrom core.registry import artifacts\n"
        "from core.accounts.auth import SYSTEM\n"
        "for i in range(2):\n"
        "    with artifacts.staging_dir() as d:\n"
        "        (d / 'model.joblib').write_bytes(b'w%d' % i)\n"
        "        registry.register_version(actor=SYSTEM, model='recsys', family='popularity',"
        " staged_dir=d, metrics={'ndcg@5': 0.5})\n"
    )
    env_run = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=cli.env, capture_output=True, text=True
    )
    assert env_run.returncode == 0, env_run.stderr
    listed = json.loads(cli("models", "list", "--json", check=True).stdout)
    assert listed[0]["name"] == "recsys" and listed[0]["versions"] == 2
    shown = json.loads(cli("models", "show", "recsys", "1.0.0", "--json", check=True).stdout)
    assert shown["stage"] == "candidate" and "model.joblib" in shown["files"]
    cli("promote", "recsys", "1.0.0", "--stage", "production", "--reason", "go", check=True)
    cli("promote", "recsys", "1.1.0", "--stage", "production", "--reason", "test", check=True)
    rb = json.loads(cli("rollback", "recsys", "--reason", "oops", "--json", check=True).stdout)
    assert rb["event"]["version"] == "1.0.0" and rb["event"]["action"] == "rollback"
    timeline = json.loads(cli("timeline", "recsys", "--json", check=True).stdout)
    assert [e["action"] for e in timeline][:3] == ["rollback", "displace", "promote"]


def test_bad_input_exits_2_with_a_message_and_changes_nothing(cli) -> None:
    cli("init", check=True)
    users = cli.root / "users.csv"
    cli("data", "generate", "--users", "50", "--out", str(users), check=True)
    cli("data", "ingest", str(users), "--name", "madrid", check=True)
    text = users.read_text().splitlines()
    fields = text[3].split(",")
    fields[5] = "five"
    text[3] = ",".join(fields)
    bad = cli.root / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    before = tree_snapshot(cli.root / "data")
    proc = cli("data", "ingest", str(bad), "--name", "madrid")
    assert proc.returncode == 2
    assert "must be numeric but holds text 'five' at line 4" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree_snapshot(cli.root / "data") == before
    listed = json.loads(cli("data", "list", "--json", check=True).stdout)
    assert [d["version"] for d in listed] == [1]

    for args, message in [
        (("models", "show", "nope", "1.0.0"), "unknown model 'nope'"),
        (("promote", "nope", "1.0.0", "--stage", "production"), "unknown model 'nope'"),
        (("rollback", "nope"), "unknown model 'nope'"),
        (("data", "ingest", str(cli.root / "missing.csv"), "--name", "x"), "file not found"),
        (
            ("promote", "x", "1.0.0", "--stage", "production", "--user", "ghost"),
            "unknown user 'ghost'",
        ),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr


def _three_production_versions(cli, model: str) -> None:
    code = (
        "from core import registry\nfrom core.registry import artifacts\n"
        "from core.accounts.auth import SYSTEM\n"
        "for i in range(3):\n"
        "    with artifacts.staging_dir() as d:\n"
        "        (d / 'model.joblib').write_bytes(b'w%d' % i)\n"
        f"        v = registry.register_version(actor=SYSTEM, model={model!r},"
        " family='popularity', staged_dir=d, metrics={'ndcg@5': 0.5})\n"
        f"    registry.promote(actor=SYSTEM, model={model!r}, version=v.version,"
        " stage='production', reason='test promotion')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=cli.env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def _production(cli, model: str) -> str:
    shown = json.loads(cli("models", "list", "--json", check=True).stdout)
    return next(m["production"] for m in shown if m["name"] == model)


def _parallel(cli, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "core", *args],
            cwd=PROJECT_ROOT,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    done = []
    for p, args in zip(procs, commands, strict=True):
        out, err = p.communicate(timeout=180)
        done.append(subprocess.CompletedProcess(args, p.returncode, out, err))
    return done


def test_rollback_run_twice_refuses_the_second_time(cli) -> None:
    cli("init", check=True)
    _three_production_versions(cli, "recsys")
    first = cli("rollback", "recsys", "--from", "1.2.0", "--reason", "bad lists", check=True)
    assert first.stdout.splitlines()[0] == "rolled back recsys from 1.2.0 to 1.1.0"
    again = cli("rollback", "recsys", "--from", "1.2.0", "--reason", "bad lists")
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "Traceback" not in again.stderr
    assert "production of recsys is 1.1.0 now, not 1.2.0" in again.stderr
    assert _production(cli, "recsys") == "1.1.0"
    # Without --from, a second rollback goes one further step back, never to 1.2.0.
    out = cli("rollback", "recsys", "--reason", "still bad", "--json", check=True)
    assert (json.loads(out.stdout)["from"], json.loads(out.stdout)["to"]) == ("1.1.0", "1.0.0")
    last = cli("rollback", "recsys", "--reason", "and again")
    assert last.returncode == 2 and "no earlier production version" in last.stderr
    assert "(1.1.0, 1.2.0 were rolled back from)" in last.stderr
    assert _production(cli, "recsys") == "1.0.0"


def test_concurrent_rollback_commands_never_restore_the_rolled_back_version(cli) -> None:
    cli("init", check=True)
    _three_production_versions(cli, "a")
    _three_production_versions(cli, "b")
    stated = _parallel(cli, *[("rollback", "a", "--from", "1.2.0", "--reason", "x")] * 3)
    assert sorted(p.returncode for p in stated) == [0, 2, 2], [p.stderr for p in stated]
    assert _production(cli, "a") == "1.1.0"
    plain = _parallel(cli, *[("rollback", "b", "--reason", "x")] * 2)
    assert [p.returncode for p in plain] == [0, 0], [p.stderr for p in plain]
    said = sorted(p.stdout.splitlines()[0] for p in plain)
    assert said == ["rolled back b from 1.1.0 to 1.0.0", "rolled back b from 1.2.0 to 1.1.0"]
    assert _production(cli, "b") == "1.0.0"
    timeline = json.loads(cli("timeline", "b", "--json", check=True).stdout)
    assert [e["version"] for e in timeline if e["action"] == "rollback"] == ["1.0.0", "1.1.0"]
