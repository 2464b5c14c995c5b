"""Worker processes for the tests: started with the test registry's environment, always reaped.

Every process a test starts through :func:`workers` is killed (by its own pid) when the test
ends, whatever happened, and its output is kept in a file that a failing assertion prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core import datasets
from core.auth import SYSTEM
from core.datasets import DatasetInfo
from core.generator import generate_users
from tests.conftest import PROJECT_ROOT, RegistryEnv

# Short intervals so that a test sees fires, takeovers and heartbeats within seconds.
FAST = (
    *("--poll", "0.5", "--sync", "0.5", "--heartbeat", "0.5", "--drift-check", "0.5"),
    *("--lease-ttl", "3"),
)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    output: Path
    name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.name} did not exit within {timeout} s:\n{self.log()[-4000:]}"
            ) from None


@dataclass
class Workers:
    env: dict[str, str]
    root: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, *args: str, name: str | None = None) -> WorkerProcess:
        name = name or f"w{len(self.started) + 1}"
        output = self.root / f"worker-{name}.log"
        with open(output, "wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jobs.worker", *FAST, *args],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(proc, output, name)
        self.started.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.log()[-3000:]}" for w in self.started)

    def stop_all(self) -> None:
        for w in self.started:
            if w.proc.poll() is None:
                os.kill(w.pid, signal.SIGKILL)
                w.proc.wait(10)


def _workers(registry: RegistryEnv) -> Iterator[Workers]:
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    env = {**base, **registry.env, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    pool = Workers(env, registry.root)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def workers(backend: RegistryEnv) -> Iterator[Workers]:
    """Start worker processes against the test registry; they are killed at the end."""
    yield from _workers(backend)


@pytest.fixture
def sqlite_workers(sqlite_backend: RegistryEnv) -> Iterator[Workers]:
    yield from _workers(sqlite_backend)


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, what: str, logs: Callable[[], str] = str
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs()}")
        time.sleep(0.2)


def ingest(root: Path, *, name: str = "madrid", users: int = 300, seed: int = 1) -> DatasetInfo:
    path = root / f"{name}-{seed}.csv"
    generate_users(users, seed=seed).to_csv(path, index=False)
    return datasets.ingest(path, name=name, actor=SYSTEM)


@pytest.fixture
def dataset(backend: RegistryEnv) -> DatasetInfo:
    return ingest(backend.root)
