"""The management API and the command line roll back to where core's rollback_plan says.

The rule lives in core.registry.rollbacks only; the interfaces never work out "the previous
production version" themselves. Over two rollbacks in a row (the second must skip the version
the first rolled back from), each interface's rollback lands on the plan's target and says it
came from the plan's current version. The Deploy page's side is tests/dashboard/
test_deploy_rollback.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from fastapi.testclient import TestClient

from core import registry
from core.accounts import auth, tokens
from core.accounts.auth import SYSTEM
from tests.conftest import PROJECT_ROOT, RegistryEnv
from tests.fixtures.registry import register_dummy


def test_api_and_cli_roll_back_to_the_plans_target_twice(backend: RegistryEnv) -> None:
    for _ in range(4):
        register_dummy()
    for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        registry.promote(
            actor=SYSTEM, model="recsys", version=v, stage="production", reason="test promotion"
        )
    auth.create_user(
        actor=SYSTEM, username="olga", password="a long enough password", role="operator"
    )
    secret = tokens.issue(actor=SYSTEM, username="olga").secret

    first = registry.rollback_plan("recsys")
    assert (first.current, first.target) == ("1.3.0", "1.2.0")
    from api.manage import create_app

    with TestClient(create_app()) as client:
        r = client.post(
            "/models/recsys/rollback",
            json={"reason": "bad lists"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert r.status_code == 200, r.text
    change = r.json()
    assert (change["displaced"]["version"], change["event"]["version"]) == (
        first.current,
        first.target,
    )

    second = registry.rollback_plan("recsys")
    assert (second.current, second.target) == ("1.2.0", "1.1.0")
    assert second.rolled_back_from == ("1.3.0",)
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    done = subprocess.run(
        [sys.executable, "-m", "core", "rollback", "recsys", "--reason", "still bad", "--json"],
        cwd=PROJECT_ROOT, env={**base, **backend.env}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["from"], out["to"]) == (second.current, second.target)
    assert registry.get_model("recsys").production == second.target
    assert registry.rollback_plan("recsys").target == "1.0.0"
