"""The management API as a real process over HTTP, on SQLite and PostgreSQL.

A CI pipeline's script (scripts/ci-promote.sh, curl only) uploads a model, has it evaluated
and promoted to staging, with the gates' verdict as its exit status; tokens are issued and
revoked from the command line, hashed at rest, scoped by role, and refused at once once
revoked; a promotion through the API writes the same audit event as the Deploy page's.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core import registry
from core.accounts import auth, tokens
from core.accounts.auth import SYSTEM
from core.families.base import FitData
from core.families.svd import SVD
from tests.conftest import PROJECT_ROOT, RegistryEnv
from tests.fixtures.registry import registry_dump as _full_dump
from tests.fixtures.workers import ingest
from tests.integrations.conftest import free_port, stop, wait_http

pytestmark = pytest.mark.timeout(600)
PASSWORD = "a long enough password"


def registry_dump() -> dict:
    """Every table, without the tokens' last-use stamps: a token's use is bookkeeping (touched
    at most once a while, so whether a request stamps it depends on the machine's speed),
    not a change the request made."""
    dump = _full_dump()
    stamp = [c.name for c in tokens.TokenRow.__table__.columns].index("last_used_at")
    dump["api_tokens"] = [row[:stamp] + row[stamp + 1 :] for row in dump.get("api_tokens", [])]
    return dump


@dataclass(frozen=True)
class Manage:
    url: str
    env: dict[str, str]
    root: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "core", *args],
            cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def token(self, user: str, *extra: str) -> str:
        done = self.cli("tokens", "issue", user, *extra)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def get(self, path: str, token: str | None, **kw: object) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.get(self.url + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]

    def post(self, path: str, token: str | None, **kw: object) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.post(self.url + path, headers=headers, timeout=120, **kw)  # type: ignore[arg-type]


@pytest.fixture
def manage(backend: RegistryEnv) -> Iterator[Manage]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_SCHEMA",)}
    env = {**base, **backend.env, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    port = free_port()
    log = backend.root / "manage.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.manage", "--port", str(port)],
            cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc, log=log)
        for name, role in (("ci", "operator"), ("watcher", "viewer")):
            auth.create_user(actor=SYSTEM, username=name, password=PASSWORD, role=role)
        yield Manage(f"http://127.0.0.1:{port}", env, backend.root)
    finally:
        stop(proc)


def _svd_files(root: Path, dataset: object, rank: int) -> list[Path]:
    """What a CI job would build: an SVD model in its pickle-free format."""
    from core.data import datasets

    ratings = datasets.ratings_matrix(datasets.load_users(dataset))  # type: ignore[arg-type]
    model = SVD({"rank": rank, "impute_rounds": 3})
    model.fit(FitData(ratings, ratings > 0, ratings[:0], ratings[:0] > 0), seed=0)
    folder = root / f"ci-build-{rank}"
    folder.mkdir()
    model.save(folder)
    return sorted(folder.iterdir())


def _ci(manage: Manage, token: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "ci-promote.sh"), *args],
        env={"PATH": os.environ["PATH"], "MANAGE_URL": manage.url, "MANAGE_TOKEN": token, **env},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_ci_script_uploads_evaluates_and_promotes_to_staging(manage: Manage) -> None:
    data = ingest(manage.root, users=300)
    token = manage.token("ci", "--label", "ci: main")
    done = _ci(manage, token, "recs", "svd", *map(str, _svd_files(manage.root, data, 6)),
               DATASET=data.label, REASON="nightly build 42")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "promoted recs@1.0.0 to staging" in done.stdout
    assert "integrity: pass" in done.stdout
    v = registry.get_version("recs", "1.0.0")
    assert v.stage == "staging" and v.metrics["ndcg@5"] > 0  # evaluated on the dataset
    assert v.metadata["evaluated_on"] == data.label
    event = registry.timeline("recs")[0]
    assert (event.action, event.to_stage, event.actor, event.reason) == (
        "promote", "staging", "ci", "nightly build 42"
    )  # fmt: skip

    # The same promotion from the Deploy page (core.registry.promote as the account) writes
    # the same event: same action, stages, actor and gates.
    second = _ci(manage, token, "recs", "svd", *map(str, _svd_files(manage.root, data, 4)),
                 DATASET=data.label, STAGE="production", REASON="r")  # fmt: skip
    assert second.returncode == 0, second.stderr
    registry.archive(actor=SYSTEM, model="recs", version="1.0.0")
    page = registry.promote(
        actor=auth.actor_for("ci"), model="recs", version="1.0.0", stage="staging",
        reason="nightly build 42",
    )  # fmt: skip
    api_event = next(e for e in registry.timeline("recs") if e.id == event.id)
    fields = ("action", "from_stage", "to_stage", "actor", "reason", "gates")
    assert {f: getattr(api_event, f) for f in fields if f != "from_stage"} == {
        f: getattr(page.event, f) for f in fields if f != "from_stage"
    }


def test_a_gate_that_refuses_is_the_exit_status(manage: Manage) -> None:
    data = ingest(manage.root, users=300)
    token = manage.token("ci")
    files = list(map(str, _svd_files(manage.root, data, 5)))
    assert _ci(manage, token, "recs", "svd", *files, DATASET=data.label).returncode == 0
    registry.set_audit_requirement(actor=SYSTEM, model="recs", required=True)
    before = registry_dump()
    done = _ci(manage, token, "recs", "svd", STAGE="production", VERSION="1.0.0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "audit: FAIL" in done.stdout and "refused" in done.stderr
    assert registry_dump() == before  # nothing moved, no event written


def test_tokens_are_hashed_scoped_and_revoked_at_once(manage: Manage) -> None:
    data = ingest(manage.root, users=200)
    ci = manage.token("ci")
    assert manage.get("/whoami", ci).json() == {"user": "ci", "role": "operator"}
    dump = json.dumps(registry_dump(), default=str)  # every table, api_tokens included
    assert tokens.TokenRow.__tablename__ in dump
    assert ci not in dump and hashlib.sha256(ci.encode()).hexdigest() in dump

    # A viewer's token, and an operator's token scoped down to viewer, cannot promote.
    files = _svd_files(manage.root, data, 3)
    assert _ci(manage, ci, "recs", "svd", *map(str, files)).returncode == 0
    for viewer in (manage.token("watcher"), manage.token("ci", "--role", "viewer")):
        assert manage.get("/models", viewer).status_code == 200
        before = registry.timeline("recs")
        refused = manage.post(
            "/models/recs/versions/1.0.0/promote", viewer, json={"stage": "production"}
        )
        assert refused.status_code == 403 and "needs the operator role" in refused.json()["detail"]
        assert registry.timeline("recs") == before
        assert (
            _ci(manage, viewer, "recs", "svd", STAGE="production", VERSION="1.0.0").returncode == 2
        )

    # Without a reason the promotion is refused by core's rule, as on every interface.
    bare = manage.post("/models/recs/versions/1.0.0/promote", ci, json={"stage": "production"})
    assert bare.status_code == 422 and "give a reason for the promotion" in bare.json()["detail"]

    listed = json.loads(manage.cli("tokens", "list", "--json").stdout)
    token_id = next(t["id"] for t in listed if t["user"] == "ci" and t["role"] == "operator")
    assert manage.cli("tokens", "revoke", str(token_id)).returncode == 0
    gone = manage.get("/whoami", ci)
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]

    # An account disabled: its tokens stop at once too.
    other = manage.token("watcher")
    auth.set_disabled(actor=SYSTEM, username="watcher", disabled=True)
    assert manage.get("/models", other).status_code == 401


def test_bad_requests_are_one_line_4xx_and_change_nothing(manage: Manage) -> None:
    ci = manage.token("ci")
    bad = manage.root / "model.npz"
    bad.write_bytes(b"not a zip")
    (manage.root / "params.json").write_text("{}")
    pickle = manage.root / "model.joblib"
    pickle.write_bytes(b"\x80\x04K\x01.")
    before = registry_dump()
    cases = [
        (manage.post("/models/recs/versions", None, data={"family": "svd"}), 401),
        (manage.get("/models", "pwm_" + "x" * 43), 401),
        (manage.get("/models/nope/versions", ci), 404),
        (
            manage.post(
                "/models/recs/versions",
                ci,
                data={"family": "svd"},
                files=[
                    ("files", ("model.npz", bad.read_bytes())),
                    ("files", ("params.json", b"{}")),
                ],
            ),  # fmt: skip
            422,
        ),
        (
            manage.post(
                "/models/recs/versions",
                ci,
                data={"family": "svd"},
                files=[("files", ("model.joblib", pickle.read_bytes()))],
            ),  # fmt: skip
            422,
        ),
        (
            manage.post(
                "/models/recs/versions",
                ci,
                data={"family": "nope"},
                files=[("files", ("model.json", b"{}"))],
            ),  # fmt: skip
            422,
        ),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, (str, list)) and "Traceback" not in response.text
    assert registry_dump() == before
    assert "never as a pickle" in cases[4][0].json()["detail"]

    for args in (("issue", "nobody"), ("issue", "watcher", "--role", "admin"), ("revoke", "999")):
        done = manage.cli("tokens", *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr

    schema = manage.get("/openapi.json", None).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path in (
        "/models", "/models/{model}/versions", "/models/{model}/versions/{version}/gates",
        "/models/{model}/versions/{version}/promote", "/models/{model}/rollback",
        "/models/{model}/timeline",
    ):  # fmt: skip
        assert path in schema["paths"]
