"""The deployment test: scripts/verify-deploy.sh builds the images and runs the whole stack.

Runs where ``dockerd`` can be started (it is started here, as root, when it is installed and
not running); skipped with the reason anywhere else. It takes several minutes (the images'
layers are cached between runs): ``pytest -m deploy`` runs it alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.deploy, pytest.mark.timeout(1800)]

ROOT = PROJECT_ROOT
NEEDED = ("docker", "dockerd", "docker-compose", "debootstrap")


def docker_answers() -> bool:
    return (
        subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode
        == 0
    )


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A reachable Docker daemon, started for the test when it is not running."""
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"deployment test skipped: {', '.join(missing)} not installed "
            "(apt-get install docker.io docker-compose debootstrap)"
        )
    if docker_answers():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("deployment test skipped: dockerd is not running and only root can start it")
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            ["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while not docker_answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.terminate()
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            pytest.skip(f"deployment test skipped: dockerd cannot start here: {' | '.join(tail)}")
        time.sleep(1)
    try:
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()


def test_the_stack_survives_a_dying_replica_and_leader(dockerd: None) -> None:
    """Under load through HAProxy: one API replica stopped, the leading worker killed; requests
    fail only while the replica dies, the standby leads within its lease, every successful
    response is in the prediction log, the dashboard answers throughout, the serving image has
    no TensorFlow and trained versions record the baked-in code revision."""
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "verify-deploy.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    print(run.stdout)
    print(run.stderr[-5000:])
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "FAIL" not in run.stdout
    assert run.stdout.count("PASS") == 4
