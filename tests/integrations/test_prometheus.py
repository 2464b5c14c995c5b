"""deploy/prometheus: checked and unit-tested with promtool, generated from the product's
thresholds, and written over the metric names the API and the worker really export."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import httpx
import pytest
import yaml

from core.monitoring.alerts import DEFAULT_THRESHOLDS
from tests.conftest import PROJECT_ROOT, RegistryEnv
from tests.fixtures.workers import wait_for
from tests.integrations.conftest import free_port, stop, wait_http

pytestmark = pytest.mark.timeout(300)
HERE = PROJECT_ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is missing: install Debian's prometheus package "
    "(bash scripts/install.sh --dev does)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=HERE, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_checks_the_config_and_the_rules() -> None:
    for args in (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "recording.yml", "alerts.yml"),
    ):
        done = _promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_unit_tests_pass_with_a_firing_and_a_quiet_case_per_alert() -> None:
    done = _promtool("test", "rules", "tests.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    tests = yaml.safe_load((HERE / "tests.yml").read_text())
    alerts = {
        r["alert"]
        for g in yaml.safe_load((HERE / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    cases = [c for t in tests["tests"] for c in t.get("alert_rule_test", [])]
    for alert in alerts:
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert} never fires in tests.yml"
        assert any(not c["exp_alerts"] for c in mine), f"{alert} has no quiet case"


def test_alerts_yml_is_generated_from_the_product_thresholds() -> None:
    done = subprocess.run(
        [sys.executable, str(HERE / "generate.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rules = {
        r["alert"]: r["expr"]
        for g in yaml.safe_load((HERE / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    t = DEFAULT_THRESHOLDS
    assert f"> {t['error_rate']:g} " in rules["PlanwiseErrorRateHigh"]
    assert f"> {t['latency_p99_ms'] / 1000:g} " in rules["PlanwiseLatencyP99High"]
    assert f"< {t['volume_drop']:g} * " in rules["PlanwiseTrafficDrop"]
    for name in ("PlanwiseErrorRateHigh", "PlanwiseLatencyP99High", "PlanwiseTrafficDrop"):
        assert f">= {t['min_requests']:g}" in rules[name]


def _names_in_rules() -> set[str]:
    text = " ".join(
        r["expr"]
        for f in ("recording.yml", "alerts.yml")
        for g in yaml.safe_load((HERE / f).read_text())["groups"]
        for r in g["rules"]
    )
    return set(re.findall(r"\bplanwise_[a-z_]+", text))


def _exported(text: str) -> set[str]:
    """Sample names a /metrics page declares (a counter's ``_total``, a histogram's
    ``_bucket``), with or without samples yet."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names |= {
                "counter": {name + "_total", name},
                "histogram": {name + "_bucket", name + "_count", name + "_sum"},
            }.get(kind, {name})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_rules_use_what_the_api_and_the_worker_export(sqlite_backend: RegistryEnv) -> None:
    env = {**os.environ, **sqlite_backend.env, "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_SCHEMA", None)
    api_port, worker_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    logs = [sqlite_backend.root / "api.log", sqlite_backend.root / "worker.log"]
    try:
        with open(logs[0], "wb") as fh:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "api", "--port", str(api_port)],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            )
        with open(logs[1], "wb") as fh:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "jobs.worker",
                        "--metrics-port",
                        str(worker_port),
                        "--poll",
                        "3600",
                    ],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            )
        wait_http(f"http://127.0.0.1:{api_port}/health", timeout=120, proc=procs[0], log=logs[0])
        wait_http(
            f"http://127.0.0.1:{worker_port}/metrics", timeout=120, proc=procs[1], log=logs[1]
        )
        api = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=30).text

        def leads() -> str | None:
            page = httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=30).text
            return page if "planwise_worker_leader 1.0" in page else None

        worker = wait_for(leads, timeout=120, what="the worker to lead", logs=logs[1].read_text)
        assert "planwise_worker_leader_present 1.0" in worker
        assert "planwise_worker_database_up 1.0" in worker
        assert 'planwise_worker_runs{status="queued"}' in worker
        missing = _names_in_rules() - _exported(api) - _exported(worker)
        # Monitoring lag is per served model: declared even before any model is served.
        assert not missing, f"rules use names nobody exports: {sorted(missing)}"
    finally:
        for proc in procs:
            stop(proc)


def test_a_bad_metrics_port_is_one_line(sqlite_backend: RegistryEnv) -> None:
    env = {**os.environ, **sqlite_backend.env}
    env.pop("DATABASE_SCHEMA", None)
    done = subprocess.run(
        [sys.executable, "-m", "jobs.worker", "--metrics-port", "70000"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--metrics-port must be from 1 to 65535" in done.stderr
