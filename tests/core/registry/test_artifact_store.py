"""Artifacts on an object store (fsspec ``memory://``): the registry, training, loading and
the integrity rules work unchanged, and a failed or tampered upload never becomes a version."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import registry, training
from core.accounts.auth import SYSTEM
from core.config import get_settings, reset_settings
from core.db import migrate
from core.errors import AlreadyExists, ArtifactIntegrityError, CoreError
from core.registry import artifacts, orphans
from core.serving import predict
from tests.conftest import RegistryEnv, drop_schema, make_env
from tests.fixtures.data import ingest_generated

MADRID = {"lat": 40.4168, "lng": -3.7038}


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RegistryEnv, str]]:
    from fsspec.implementations.memory import MemoryFileSystem

    url = f"memory://planwise-{uuid.uuid4().hex[:8]}/artifacts"
    env, schema = make_env(request.param, tmp_path)
    env["ARTIFACTS_DIR"] = url
    monkeypatch.delenv("DATABASE_SCHEMA", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    migrate.upgrade()
    try:
        yield RegistryEnv(request.param, tmp_path, env), url
    finally:
        reset_settings()
        predict.clear_cache()
        MemoryFileSystem().rm(url.split("://")[1].split("/")[0], recursive=True)
        if schema:
            drop_schema(schema)


def _fs():
    from fsspec.implementations.memory import MemoryFileSystem

    return MemoryFileSystem()


def _remote(url: str, rel: str) -> str:
    return f"{url.split('://', 1)[1]}/{rel}"


def test_a_trained_version_lives_in_the_store_and_serves_from_a_verified_cache(store) -> None:
    env, url = store
    users = ingest_generated(env.root, n=600)
    v = training.train(actor=SYSTEM, family="svd", dataset=users, params={"rank": 4}).version
    fs = _fs()
    names = {p.rsplit("/", 1)[1] for p in fs.find(_remote(url, v.artifact_dir))}
    assert names == set(v.files) and "metadata.json" in names
    assert artifacts.location() == url
    assert artifacts.check(v.artifact_dir, v.files) == dict.fromkeys(v.files, "ok")

    # Another replica: an empty cache fills from the store and serves the same lists.
    first = predict.recommend(v.model, v.version, [[5] + [0] * 28], **MADRID)
    shutil.rmtree(get_settings().artifacts_root)
    predict.clear_cache()
    again = predict.recommend(v.model, v.version, [[5] + [0] * 28], **MADRID)
    assert [r.place_id for r in again] == [r.place_id for r in first]

    # A cached copy edited on disk is replaced by the store's before it is loaded.
    cached = get_settings().artifacts_root / v.artifact_dir / "model.npz"
    cached.write_bytes(b"not the model")
    predict.clear_cache()
    assert predict.recommend(v.model, v.version, [[5] + [0] * 28], **MADRID)
    assert artifacts.sha256_file(cached) == v.files["model.npz"]


def test_a_tampered_or_missing_object_is_refused_and_named(store) -> None:
    env, url = store
    users = ingest_generated(env.root, n=600)
    v = training.train(actor=SYSTEM, family="popularity", dataset=users).version
    fs = _fs()
    name = next(n for n in v.files if n != "metadata.json")
    target = _remote(url, f"{v.artifact_dir}/{name}")
    fs.pipe_file(target, b"tampered")
    shutil.rmtree(get_settings().artifacts_root / v.artifact_dir)
    predict.clear_cache()
    with pytest.raises(ArtifactIntegrityError, match=rf"{name} in memory://.* was modified"):
        registry.verified_dir(v)
    assert artifacts.check(v.artifact_dir, v.files)[name] == "modified"
    assert not (get_settings().artifacts_root / v.artifact_dir / name).exists()

    fs.rm(target)
    with pytest.raises(ArtifactIntegrityError, match=f"{name} is missing in memory://"):
        registry.verified_dir(v)
    assert artifacts.check(v.artifact_dir, v.files)[name] == "missing"
    with pytest.raises(CoreError):
        registry.promote(
            actor=SYSTEM,
            model=v.model,
            version=v.version,
            stage="production",
            reason="test promotion",
        )
    assert registry.get_version(v.model, v.version).stage == "candidate"


def test_a_failed_upload_registers_nothing_and_leaves_nothing(store, monkeypatch) -> None:
    env, url = store
    users = ingest_generated(env.root, n=600)
    v = training.train(actor=SYSTEM, family="popularity", dataset=users).version
    fs = _fs()
    before = sorted(fs.find(url.split("://", 1)[1]))
    rows = registry.list_versions(model=v.model).total
    real_put = type(fs).put_file
    calls = {"n": 0}

    def failing_put(self, lpath, rpath, **kwargs):
        calls["n"] += 1
        if rpath.endswith("metadata.json"):  # the last file: everything else is uploaded
            raise OSError("SlowDown: the bucket refused the write")
        return real_put(self, lpath, rpath, **kwargs)

    monkeypatch.setattr(type(fs), "put_file", failing_put)
    with pytest.raises(
        CoreError, match=r"could not write artifact file .*metadata\.json to memory://"
    ):
        training.train(actor=SYSTEM, family="popularity", dataset=users)
    assert calls["n"] >= 2
    monkeypatch.setattr(type(fs), "put_file", real_put)
    assert sorted(fs.find(url.split("://", 1)[1])) == before
    assert registry.list_versions(model=v.model).total == rows
    cache = get_settings().artifacts_root
    assert {p.name for p in (cache / "popularity" / v.model).iterdir()} == {f"v{v.version}"}

    # The next training takes the next number as if nothing happened.
    nxt = training.train(actor=SYSTEM, family="popularity", dataset=users).version
    assert nxt.version != v.version


def test_sweep_moves_only_this_registrys_unfinished_store_folders(store) -> None:
    import json
    import time

    env, url = store
    users = ingest_generated(env.root, n=600)
    v = training.train(actor=SYSTEM, family="popularity", dataset=users).version
    fs = _fs()
    assert not fs.exists(_remote(url, f"{v.artifact_dir}/{artifacts.MARKER}"))
    foreign = _remote(url, "popularity/popularity/v9.9.9")
    fs.pipe_file(f"{foreign}/model.json", b"another registry's version")
    with pytest.raises(AlreadyExists, match="sweep --dry-run"):
        staged = env.root / "staged"
        staged.mkdir()
        (staged / "model.json").write_bytes(b"x")
        artifacts.publish(staged, relative_dir="popularity/popularity/v9.9.9", metadata={})
    ours = _remote(url, "popularity/popularity/v9.9.8")
    fs.pipe_file(f"{ours}/model.json", b"left by a killed worker")
    marker = {"registry": artifacts.registry_identity(), "host": "gone", "pid": 1}
    fs.pipe_file(
        f"{ours}/{artifacts.MARKER}",
        json.dumps({**marker, "written_at": time.time() - 7200}).encode(),
    )

    entries = {e.folder: e for e in orphans.sweep(registry.known_artifact_dirs())}
    assert entries["popularity/popularity/v9.9.9"].action == "left"
    assert entries["popularity/popularity/v9.9.8"].action == "moved"
    moved_to = entries["popularity/popularity/v9.9.8"].moved_to
    assert moved_to.startswith(".orphans/popularity/popularity/v9.9.8.")
    assert fs.exists(foreign) and not fs.exists(ours)
    assert fs.cat_file(_remote(url, f"{moved_to}/model.json")) == b"left by a killed worker"
    manifest = json.loads(fs.cat_file(_remote(url, f"{moved_to}.json")))
    assert manifest["original"] == "popularity/popularity/v9.9.8"
    assert fs.exists(_remote(url, v.artifact_dir))


def test_drift_reports_reach_other_replicas_through_the_store(store) -> None:
    env, url = store
    relative = "reports/recsys/drift-1.html"
    local = get_settings().artifacts_root / relative
    local.parent.mkdir(parents=True)
    local.write_text("<html>report</html>")
    artifacts.store_file(relative, local)
    local.unlink()
    fetched = artifacts.local_file(relative)
    assert fetched is not None and fetched.read_text() == "<html>report</html>"
    assert artifacts.local_file("reports/recsys/drift-2.html") is None


def test_an_unknown_store_scheme_is_a_clear_error(tmp_path, monkeypatch) -> None:
    env, _ = make_env("sqlite", tmp_path)
    env["ARTIFACTS_DIR"] = "nosuchproto://bucket/x"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    try:
        with pytest.raises(CoreError, match="cannot open the artifact store nosuchproto://"):
            artifacts.location()
    finally:
        reset_settings()


def test_two_replicas_share_versions_through_the_store_only(tmp_path: Path) -> None:
    """Separate processes with separate local folders (data, cache) and one store and
    database, as a team deployment runs them: one trains, the other serves the version."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    store_dir = tmp_path / "bucket"
    shared = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "ARTIFACTS_DIR": f"local://{store_dir}",
    }

    def core(replica: str, *args: str) -> str:
        env = {**os.environ, **shared, "DATA_DIR": str(tmp_path / replica)}
        env.pop("DATABASE_SCHEMA", None)
        done = subprocess.run(
            [sys.executable, "-m", "core", *args],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    users = tmp_path / "users.csv"
    core("trainer", "data", "generate", "--users", "400", "--out", str(users))
    core("trainer", "data", "ingest", str(users), "--name", "madrid")
    core("trainer", "train", "popularity", "--dataset", "madrid", "--model", "recsys")
    assert list(store_dir.glob("popularity/recsys/v*/metadata.json"))
    assert not (tmp_path / "server" / "artifact-cache").exists()
    prefs = json.dumps([5] + [0] * 28)
    where = ("--lat", "40.4168", "--lng", "-3.7038")
    out = core(
        "server", "recommend", "recsys", "--version", "1.0.0", "--prefs", prefs, *where, "--json"
    )
    assert len(json.loads(out)) == 10
    assert list((tmp_path / "server" / "artifact-cache").rglob("metadata.json"))
