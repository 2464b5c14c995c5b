"""The orphan sweep: explicit, and never touching a folder it cannot prove is this registry's
own abandoned write. Real processes: ``init``, the worker and the CLI against registries that
share one ``ARTIFACTS_DIR``, and a registration caught between publishing and committing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core import registry
from core.accounts.auth import SYSTEM
from core.errors import BadInput
from core.registry import artifacts, orphans
from jobs.worker import Options, Worker
from tests.conftest import PROJECT_ROOT, RegistryEnv, tree_snapshot
from tests.fixtures.registry import register_dummy

TIMEOUT_S = 120

# Registers one version of "recsys" and stops right after its folder was published, before
# the registry row commits: it waits for the file argv[2], or with argv[2] == "die", is killed.
_REGISTER_AND_PAUSE = """
import os, sys, time
from pathlib import Path
from core import registry
from core.registry import artifacts, orphans
from core.accounts.auth import SYSTEM

published, go = Path(sys.argv[1]), sys.argv[2]
real_publish = artifacts.publish

def publish_then_wait(*args, **kwargs):
    out = real_publish(*args, **kwargs)
    published.write_text(out.relative_dir)
    if go == "die":
        os.kill(os.getpid(), 9)
    while not Path(go).exists():
        time.sleep(0.01)
    return out

artifacts.publish = publish_then_wait
with artifacts.staging_dir() as staged:
    (staged / "model.joblib").write_bytes(b"being registered")
    v = registry.register_version(
        actor=SYSTEM, model="recsys", family="popularity", staged_dir=staged
    )
print(v.artifact_dir)
"""


def _env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    return {**base, **env}


def _core(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=PROJECT_ROOT,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    return done


def _wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen | None = None):  # type: ignore[type-arg]
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {proc.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _run_worker_until_it_leads(env: dict[str, str], log_file: Path) -> None:
    """A real ``python -m jobs.worker``: started, waited for until its scheduler runs (the
    leader's recovery is behind it), then stopped."""
    with open(log_file, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.worker", "-v"],
            cwd=PROJECT_ROOT,
            env=_env(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        _wait_for(lambda: "Scheduler started" in log_file.read_text(), "the worker to lead", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT_S)


def _abandoned_write(rel: str, *, registry_identity: str, age_s: float) -> Path:
    """A folder as a registration killed after publishing leaves it (its writer is gone)."""
    folder = artifacts.root() / rel
    folder.mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"never registered")
    marker = {
        "registry": registry_identity,
        "host": "a-host-that-is-gone",
        "pid": 1,
        "written_at": time.time() - age_s,
        "relative_dir": rel,
    }
    (folder / artifacts.MARKER).write_text(json.dumps(marker))
    return folder


def test_init_and_a_worker_on_another_database_leave_shared_folders_alone(
    backend: RegistryEnv, tmp_path: Path
) -> None:
    """Registry A holds versions; B (an empty database, as a missing DATABASE_URL gives)
    shares A's ARTIFACTS_DIR. Nothing B runs moves A's folders, even A's own abandoned one."""
    kept = [register_dummy().artifact_dir, register_dummy(model="other").artifact_dir]
    abandoned = _abandoned_write(
        "popularity/recsys/v7.0.0", registry_identity=artifacts.registry_identity(), age_s=7200
    )
    before = tree_snapshot(backend.artifacts)
    b = {**backend.env, "DATABASE_URL": f"sqlite:///{tmp_path / 'b' / 'empty.db'}"}
    b.pop("DATABASE_SCHEMA", None)
    (tmp_path / "b").mkdir()

    _core(b, "init")
    assert tree_snapshot(backend.artifacts) == before
    _run_worker_until_it_leads(b, tmp_path / "worker-b.log")
    assert tree_snapshot(backend.artifacts) == before
    swept = json.loads(_core(b, "artifacts", "sweep", "--older-than", "0", "--json").stdout)
    assert {e["folder"]: e["action"] for e in swept} == {
        kept[0]: "left",
        kept[1]: "left",
        "popularity/recsys/v7.0.0": "left",
    }
    assert "another registry" in next(e for e in swept if "v7.0.0" in e["folder"])["reason"]
    assert tree_snapshot(backend.artifacts) == before

    # A's own worker reports its abandoned write but does not move it either: only the
    # explicit command of A's operator does.
    _run_worker_until_it_leads(backend.env, tmp_path / "worker-a.log")
    assert "v7.0.0 was published but never registered" in (tmp_path / "worker-a.log").read_text()
    assert tree_snapshot(backend.artifacts) == before
    swept = json.loads(_core(backend.env, "artifacts", "sweep", "--json").stdout)
    assert [e["action"] for e in swept if "v7.0.0" in e["folder"]] == ["moved"]
    assert not abandoned.exists()
    for rel in kept:
        assert registry.verified_dir(registry.get_version(*_model_version(rel)))


def _model_version(rel: str) -> tuple[str, str]:
    _, model, version = rel.split("/")
    return model, version.removeprefix("v")


def test_a_registration_in_progress_is_never_moved(backend: RegistryEnv, tmp_path: Path) -> None:
    """A CLI registration stopped between publishing its folder and committing its row:
    ``init``, a worker taking the lead and even ``artifacts sweep --older-than 0`` of the same
    registry leave it; it then commits and its marker goes."""
    register_dummy()
    _core(backend.env, "init")
    published, go = tmp_path / "published", tmp_path / "go"
    writer = subprocess.Popen(
        [sys.executable, "-c", _REGISTER_AND_PAUSE, str(published), str(go)],
        cwd=PROJECT_ROOT,
        env=_env(backend.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(published.exists, "the folder to be published", writer)
        rel = published.read_text()
        folder = artifacts.root() / rel
        assert (folder / artifacts.MARKER).is_file()
        assert rel not in registry.known_artifact_dirs()
        before = tree_snapshot(folder)

        if backend.backend == "postgres":
            # SQLite queues every writer behind the registration's transaction, so there
            # init and a worker's recovery cannot even start until it commits.
            _core(backend.env, "init")
            Worker(Options(), worker_id="leader")._recover()
        assert [
            e.action
            for e in orphans.sweep(registry.known_artifact_dirs(), older_than_s=0, dry_run=True)
            if e.folder == rel
        ] == ["left"]
        swept = json.loads(
            _core(backend.env, "artifacts", "sweep", "--older-than", "0", "--json").stdout
        )
        assert [e["action"] for e in swept if e["folder"] == rel] == ["left"]
        assert "still running" in next(e for e in swept if e["folder"] == rel)["reason"]
        assert tree_snapshot(folder) == before
    finally:
        go.touch()
        out, err = writer.communicate(timeout=TIMEOUT_S)
    assert writer.returncode == 0, err
    assert out.strip() == rel and rel in registry.known_artifact_dirs()
    assert not (folder / artifacts.MARKER).exists()
    version = registry.get_version(*_model_version(rel))
    assert registry.verified_dir(version) == folder


def test_a_killed_registration_is_swept_only_when_asked_and_maps_back(
    backend: RegistryEnv, tmp_path: Path
) -> None:
    register_dummy()
    published = tmp_path / "published"
    writer = subprocess.run(
        [sys.executable, "-c", _REGISTER_AND_PAUSE, str(published), "die"],
        cwd=PROJECT_ROOT,
        env=_env(backend.env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert writer.returncode == -9
    rel = published.read_text()
    assert rel == "popularity/recsys/v1.1.0" and rel not in registry.known_artifact_dirs()
    folder = artifacts.root() / rel

    # Recent: left by the default age, even though its writer is gone.
    entries = orphans.sweep(registry.known_artifact_dirs())
    assert [(e.folder, e.action) for e in entries if e.folder == rel] == [(rel, "left")]
    dry = json.loads(
        _core(backend.env, "artifacts", "sweep", "--dry-run", "--older-than", "0", "--json").stdout
    )
    assert [e["action"] for e in dry if e["folder"] == rel] == ["would move"]
    assert folder.is_dir()

    out = _core(backend.env, "artifacts", "sweep", "--older-than", "0").stdout
    assert rel in out and "moved" in out
    assert not folder.exists()
    moved = sorted((artifacts.root() / ".orphans" / "popularity" / "recsys").glob("v1.1.0.*"))
    target = next(p for p in moved if p.is_dir())
    assert (target / "model.joblib").read_bytes() == b"being registered"
    manifest = json.loads(target.with_name(target.name + ".json").read_text())
    assert manifest["original"] == rel
    assert manifest["moved_to"] == target.relative_to(artifacts.root()).as_posix()

    # The number is free again.
    assert register_dummy().version == "1.1.0"


def test_sweep_checks_its_input(backend: RegistryEnv) -> None:
    from core.accounts.auth import Actor
    from core.errors import PermissionDenied
    from core.registry import artifact_sweep

    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(BadInput, match="--older-than must be"):
            artifact_sweep.sweep(actor=SYSTEM, older_than_minutes=bad)
    with pytest.raises(PermissionDenied):
        artifact_sweep.sweep(actor=Actor("vera", "viewer"))
