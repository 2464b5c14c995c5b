"""Real servers for the integration tests: an MLflow tracking server, the management API.

The MLflow server runs from the full ``mlflow`` package in its own virtualenv
(``.venv-mlflow-server``, made here on first use): the full package pins ``pyarrow`` below the
version the product runs, so the product itself installs only the ``mlflow-skinny`` client of
the same version. Every process a fixture starts is killed by its own pid when it ends.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.api import free_port

SERVER_VENV = PROJECT_ROOT / ".venv-mlflow-server"


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers 200; fail with the process's output if it died or took too long."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(
                f"{proc.args!r} exited {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{url} did not answer within {timeout} s:\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.3)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def mlflow_server_bin() -> Path:
    """The ``mlflow`` command of the server's virtualenv, the client's version, made once."""
    version = importlib.metadata.version("mlflow-skinny")
    binary = SERVER_VENV / "bin" / "mlflow"
    stamp = SERVER_VENV / f".mlflow-{version}"
    if binary.exists() and stamp.exists():
        return binary
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(SERVER_VENV)], check=True)
    result = subprocess.run(
        [str(SERVER_VENV / "bin" / "pip"), "install", "--quiet", f"mlflow=={version}"],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if result.returncode != 0:
        pytest.fail(f"could not install the MLflow server {version}: {result.stderr[-2000:]}")
    stamp.touch()
    return binary


@dataclass(frozen=True)
class MlflowServer:
    url: str
    root: Path
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """``mlflow server`` on a random loopback port: SQLite backend, local artifact root."""
    binary = mlflow_server_bin()
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = root / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                str(binary),
                "server",
                "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=root,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180, proc=proc, log=log)
        yield MlflowServer(f"http://127.0.0.1:{port}", root, proc)
    finally:
        if proc.poll() is None:  # the server's own workers are in its process group
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
