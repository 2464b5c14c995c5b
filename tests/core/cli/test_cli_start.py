"""Starting the command line is cheap: registering every command imports none of the heavy
modules (each handler imports what it uses), and what registration writes out or reads late
is what the core defines."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from typing import get_args

from sqlalchemy.exc import OperationalError

from core.cli import _database_unreachable, artifacts_cmds, integrations_cmds, jobs_cmds, users_cmds

HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "sqlalchemy",
    "pydantic",
    "pydantic_settings",
    "core.config",
    "core.db",
    "core.data.datasets",
    "core.accounts.auth",
    "core.registry",
)


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    modules = json.loads(out.stdout.splitlines()[-1])
    return [m for m in HEAVY if m in modules]


def test_building_the_parser_imports_nothing_heavy() -> None:
    assert _loaded_after("from core.cli import build_parser; build_parser()") == []


def test_help_of_a_light_command_imports_nothing_heavy() -> None:
    code = (
        "from core.cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['users', 'list', '--help']) == 0"
    )
    assert _loaded_after(code) == []


def test_late_choices_are_the_cores_own() -> None:
    from core.accounts import auth
    from core.db import tables

    assert tuple(users_cmds.ROLES) == get_args(auth.Role)
    assert tuple(integrations_cmds.ROLES) == get_args(auth.Role)
    assert tuple(jobs_cmds.POLICIES) == tables.POLICIES
    assert tuple(jobs_cmds.STATUSES) == tables.STATUSES
    assert tuple(jobs_cmds.TRIGGERS) == tables.TRIGGERS
    assert "admin" in users_cmds.ROLES and "owner" not in users_cmds.ROLES


def test_the_sweep_default_is_the_stores() -> None:
    from core.registry import artifact_sweep

    default = inspect.signature(artifact_sweep.sweep).parameters["older_than_minutes"].default
    assert default == artifacts_cmds.DEFAULT_OLDER_THAN_MIN


def test_an_unreachable_database_is_recognised_without_importing_sqlalchemy_first() -> None:
    assert _database_unreachable(OperationalError("SELECT 1", {}, Exception("refused")))
    assert not _database_unreachable(ValueError("other"))
