"""What every entry point does on start: schema up to date, first admin.

It never sweeps artifact folders: a process started against another (or an empty) database
that shares ``ARTIFACTS_DIR`` would take every folder it does not know for an orphan. That
is ``python -m core artifacts sweep``, run by an operator (see :mod:`core.registry.artifact_sweep`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.accounts import auth
from core.db import migrate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartupReport:
    heads: list[str]
    admin_password: str | None


def ensure_ready() -> StartupReport:
    """Migrate under a lock and create the first admin."""
    heads = migrate.upgrade()
    password = auth.ensure_admin()
    return StartupReport(heads, password)
