"""Registry semantics on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError, IntegrityError

from core import registry
from core.accounts.auth import SYSTEM, Actor
from core.db import transaction
from core.errors import (
    AlreadyExists,
    ArtifactIntegrityError,
    BadInput,
    GateFailed,
    NotFound,
    PermissionDenied,
    StageConflict,
)
from core.registry import artifacts, versions
from tests.fixtures.registry import register_dummy, registry_dump

OPERATOR = Actor("olga", "operator")


def test_versions_bump_minor_by_default_and_accept_explicit_numbers(backend) -> None:
    assert register_dummy().version == "1.0.0"
    assert register_dummy().version == "1.1.0"
    assert register_dummy(bump="major").version == "2.0.0"
    assert register_dummy(bump="patch").version == "2.0.1"
    assert register_dummy(version="5.2.0").version == "5.2.0"
    assert register_dummy().version == "5.3.0"
    with pytest.raises(AlreadyExists, match="already has version 5.2.0"):
        register_dummy(version="5.2.0")
    with pytest.raises(BadInput, match="invalid version"):
        register_dummy(version="1.2")
    info = registry.get_model("recsys")
    assert (info.latest, info.version_count, info.production) == ("5.3.0", 6, None)


def test_registration_writes_layout_metadata_and_hashes(backend) -> None:
    v = register_dummy(description="first")
    folder = registry_env_folder(v)
    assert folder == artifacts.root() / "popularity" / "recsys" / "v1.0.0"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["model_name"] == "recsys" and meta["version"] == "1.0.0"
    assert meta["files"]["model.joblib"] == artifacts.sha256_file(folder / "model.joblib")
    for key in (
        "created_at",
        "python_version",
        "code_revision",
        "libraries",
        "performance",
        "hyperparameters",
        "dataset",
        "parent_version",
    ):
        assert key in meta
    assert v.files["metadata.json"] == artifacts.sha256_file(folder / "metadata.json")
    assert registry.verified_dir(v) == folder
    assert [e.action for e in registry.timeline("recsys")] == ["register"]


def registry_env_folder(v):  # noqa: ANN001, ANN201
    return artifacts.root() / v.artifact_dir


def test_tampered_or_missing_artifacts_are_refused(backend) -> None:
    v = register_dummy()
    folder = registry_env_folder(v)
    (folder / "model.joblib").write_bytes(b"evil pickle")
    with pytest.raises(ArtifactIntegrityError, match="model.joblib was modified"):
        registry.verified_dir(v)
    with pytest.raises(GateFailed, match="integrity gate"):
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version="1.0.0",
            stage="production",
            reason="test promotion",
        )
    (folder / "model.joblib").unlink()
    with pytest.raises(ArtifactIntegrityError, match="model.joblib is missing"):
        registry.verified_dir(v)
    assert registry.get_version("recsys", "1.0.0").stage == "candidate"


def test_failed_registration_leaves_no_folder_and_no_row(backend, monkeypatch) -> None:
    register_dummy()
    before = registry_dump()
    folders = sorted(p.name for p in (artifacts.root() / "popularity" / "recsys").iterdir())

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("disk vanished")

    monkeypatch.setattr(versions, "StageEventRow", broken)
    with pytest.raises(RuntimeError):
        register_dummy()
    assert registry_dump() == before
    assert sorted(p.name for p in (artifacts.root() / "popularity" / "recsys").iterdir()) == folders


def test_a_lineage_the_families_cannot_have_is_refused(backend) -> None:
    base = register_dummy("ae", family="autoencoder")
    register_dummy("pop")
    before = registry_dump()
    with pytest.raises(BadInput, match="the svd family is not trained from a parent"):
        register_dummy("ae2", family="svd", parent=("ae", base.version))
    with pytest.raises(BadInput, match="parent pop@1.0.0 is a popularity version"):
        register_dummy("ae", family="transfer", parent=("pop", "1.0.0"))
    assert registry_dump() == before
    child = register_dummy("ae", family="transfer", parent=("ae", base.version))
    assert child.parent == ("ae", base.version)


def test_promote_archives_the_previous_holder_and_records_events(backend) -> None:
    for _ in range(3):
        register_dummy()
    registry.promote(
        actor=OPERATOR, model="recsys", version="1.0.0", stage="production", reason="first"
    )
    change = registry.promote(
        actor=OPERATOR, model="recsys", version="1.1.0", stage="production", reason="better"
    )
    assert change.displaced is not None and change.displaced.version == "1.0.0"
    assert registry.get_version("recsys").version == "1.1.0"
    assert registry.get_version("recsys", "1.0.0").stage == "archived"
    registry.promote(
        actor=OPERATOR, model="recsys", version="1.2.0", stage="staging", reason="test promotion"
    )
    m = registry.get_model("recsys")
    assert (m.production, m.staging) == ("1.1.0", "1.2.0")
    with pytest.raises(BadInput, match="already in staging"):
        registry.promote(
            actor=OPERATOR,
            model="recsys",
            version="1.2.0",
            stage="staging",
            reason="test promotion",
        )
    events = registry.timeline("recsys")
    assert events[0].action == "promote" and events[0].actor == "olga"
    assert {g["name"] for g in events[0].gates} == {"integrity"}


def test_metric_and_audit_gates_show_their_figures(backend) -> None:
    register_dummy(metrics={"ndcg@5": 0.60, "rmse": 0.9})
    register_dummy(metrics={"ndcg@5": 0.50, "rmse": 0.8})
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.0.0", stage="production", reason="test promotion"
    )
    with pytest.raises(GateFailed) as err:
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version="1.1.0",
            stage="production",
            reason="test promotion",
        )
    metrics_gate = next(g for g in err.value.gates if g.name == "metrics")
    assert not metrics_gate.passed
    assert metrics_gate.figures["ndcg@5"]["production"] == 0.60
    assert "ndcg@5 0.5000 vs production 0.6000" in str(err.value)

    registry.update_model(actor=SYSTEM, name="recsys", require_audit=True)
    register_dummy(metrics={"ndcg@5": 0.70, "rmse": 0.8})
    with pytest.raises(GateFailed, match="no audit verdict"):
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version="1.2.0",
            stage="production",
            reason="test promotion",
        )
    from core.registry import audit

    audit.record_verdict(
        actor=Actor("ana", "auditor"),
        model="recsys",
        version="1.2.0",
        verdict="approve",
        comment="lists look right",
    )
    change = registry.promote(
        actor=SYSTEM, model="recsys", version="1.2.0", stage="production", reason="test promotion"
    )
    assert [g["passed"] for g in change.gates] == [True, True, True]


def test_rollback_returns_the_previous_production_version(backend) -> None:
    for _ in range(3):
        register_dummy()
    with pytest.raises(BadInput, match="no production version"):
        registry.rollback(actor=SYSTEM, model="recsys", reason="test rollback")
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.0.0", stage="production", reason="test promotion"
    )
    with pytest.raises(BadInput, match="no earlier production version"):
        registry.rollback(actor=SYSTEM, model="recsys", reason="test rollback")
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.2.0", stage="production", reason="test promotion"
    )
    change = registry.rollback(actor=OPERATOR, model="recsys", reason="bad lists")
    assert change.event.action == "rollback" and change.event.version == "1.0.0"
    assert change.displaced.version == "1.2.0"
    assert registry.get_version("recsys").version == "1.0.0"
    assert registry.get_version("recsys", "1.2.0").stage == "archived"


def test_what_was_in_production_at_time_t(backend) -> None:
    register_dummy()
    register_dummy()
    t0 = dt.datetime.now(dt.UTC)
    time.sleep(0.02)
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.0.0", stage="production", reason="test promotion"
    )
    time.sleep(0.02)
    t1 = dt.datetime.now(dt.UTC)
    time.sleep(0.02)
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.1.0", stage="production", reason="test promotion"
    )
    time.sleep(0.02)
    t2 = dt.datetime.now(dt.UTC)
    time.sleep(0.02)
    registry.rollback(actor=SYSTEM, model="recsys", reason="test rollback")
    t3 = dt.datetime.now(dt.UTC)
    assert registry.production_at("recsys", t0) is None
    assert registry.production_at("recsys", t1) == "1.0.0"
    assert registry.production_at("recsys", t2) == "1.1.0"
    assert registry.production_at("recsys", t3) == "1.0.0"
    spans = registry.production_history("recsys")
    assert [s[0] for s in spans] == ["1.0.0", "1.1.0", "1.0.0"]
    assert spans[-1][2] is None


def test_a_stale_view_is_refused(backend) -> None:
    register_dummy()
    register_dummy()
    seen = registry.get_model("recsys").stage_revision
    registry.promote(
        actor=SYSTEM, model="recsys", version="1.0.0", stage="production", reason="test promotion"
    )
    with pytest.raises(StageConflict, match="changed since you loaded them"):
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version="1.1.0",
            stage="production",
            expected_revision=seen,
            reason="test promotion",
        )
    with pytest.raises(StageConflict, match="is now production"):
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version="1.0.0",
            stage="staging",
            expected_stage="candidate",
            reason="test promotion",
        )


def test_roles_are_enforced_in_core(backend) -> None:
    register_dummy()
    before = registry_dump()
    for role in ("viewer", "auditor"):
        with pytest.raises(PermissionDenied, match=f"\\({role}\\) may not promote"):
            registry.promote(
                actor=Actor("v", role),
                model="recsys",
                version="1.0.0",
                stage="production",
                reason="test promotion",
            )
        with pytest.raises(PermissionDenied):
            register_dummy(actor=Actor("v", role))
    assert registry_dump() == before


def test_unknown_model_and_version_are_named(backend) -> None:
    register_dummy()
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        registry.get_version("nope", "1.0.0")
    with pytest.raises(NotFound, match="has no version '9.9.9'"):
        registry.promote(
            actor=SYSTEM,
            model="recsys",
            version="9.9.9",
            stage="production",
            reason="test promotion",
        )
    with pytest.raises(NotFound, match="has no production version"):
        registry.get_version("recsys")


def test_the_database_refuses_two_production_versions(backend) -> None:
    register_dummy()
    register_dummy()
    with pytest.raises((IntegrityError, DatabaseError)), transaction() as s:
        s.execute(text("UPDATE model_versions SET stage = 'production'"))


def test_the_audit_log_is_append_only(backend) -> None:
    register_dummy()
    for stmt in ("UPDATE stage_events SET actor = 'mallory'", "DELETE FROM stage_events"):
        with pytest.raises(DatabaseError, match="append-only"), transaction() as s:
            s.execute(text(stmt))
    assert registry.timeline("recsys")[0].actor == SYSTEM.username


def test_list_versions_filters_and_paginates(backend) -> None:
    for i in range(7):
        register_dummy(model="alpha" if i % 2 else "beta", description=f"run {i}")
    registry.promote(
        actor=SYSTEM, model="alpha", version="1.0.0", stage="production", reason="test promotion"
    )
    page = registry.list_versions(page=1, page_size=3)
    assert (page.total, len(page.items), page.pages) == (7, 3, 3)
    assert page.items[0].description == "run 6"
    assert registry.list_versions(model="alpha").total == 3
    assert registry.list_versions(stage="production").items[0].model == "alpha"
    assert registry.list_versions(search="run 4").items[0].model == "beta"
    with pytest.raises(BadInput, match="unknown stage"):
        registry.list_versions(stage="prod")
