"""The compose file describes the deployment the deployment test runs, and is valid."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

ROOT = PROJECT_ROOT
ENV = {**os.environ, "POSTGRES_PASSWORD": "pw", "API_KEYS": "k1,k2"}
TOPOLOGY = {"db", "store", "init", "worker1", "worker2", "api1", "api2", "lb", "dashboard"}


def compose_config(*files: str, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    args = ["docker-compose"]
    for f in files:
        args += ["-f", str(ROOT / "deploy" / f)]
    return subprocess.run(
        [*args, "config"], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_the_compose_file_is_valid_and_holds_the_verified_topology() -> None:
    out = compose_config("compose.yaml")
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    services = config["services"]
    assert set(services) == TOPOLOGY
    targets = {name: s.get("build", {}).get("target") for name, s in services.items()}
    assert targets == {
        "db": "postgres",
        "store": "store",
        "init": "training",
        "worker1": "training",
        "worker2": "training",
        "api1": "serving",
        "api2": "serving",
        "lb": "balancer",
        "dashboard": "serving",
    }
    for name in ("worker1", "worker2", "api1", "api2", "dashboard"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )
        env = services[name]["environment"]
        assert env["ARTIFACTS_DIR"].startswith("s3://") and env["FSSPEC_S3_ENDPOINT_URL"]
    assert set(services["lb"]["depends_on"]) == {"api1", "api2"}
    # the balancer sends to exactly the API replicas the compose file runs
    cfg = (ROOT / "deploy" / "haproxy.cfg").read_text()
    servers = {line.split()[1] for line in cfg.splitlines() if line.strip().startswith("server ")}
    assert servers == {"api1", "api2"}
    # every file an image copies from deploy/ is in the build context
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for f in ("postgres-entrypoint.sh", "haproxy.cfg", "objectstore.py"):
        assert f"!deploy/{f}" in ignore


def test_the_minio_override_is_valid() -> None:
    out = compose_config(
        "compose.yaml", "compose.minio.yaml", env={**ENV, "S3_SECRET_KEY": "secret-pw"}
    )
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    assert services["store"]["build"]["dockerfile"] == "deploy/minio.Dockerfile"
    assert services["init"]["depends_on"]["bucket"]["condition"] == "service_completed_successfully"


def test_missing_secrets_are_named() -> None:
    out = compose_config("compose.yaml", env={k: v for k, v in ENV.items() if k != "API_KEYS"})
    assert out.returncode != 0
    assert "set API_KEYS" in out.stderr
