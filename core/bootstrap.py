"""What every entry point does on start: schema up to date, first admin, stray folders cleared."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core import artifacts, auth, migrate, registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartupReport:
    heads: list[str]
    admin_password: str | None
    orphans_moved: list[str]


def ensure_ready(*, sweep: bool = False) -> StartupReport:
    """Migrate under a lock, create the first admin, optionally clear orphaned artifacts.

    Sweeping is for single-writer moments (``init``, the worker's start): a folder published a
    moment ago by a running trainer is not yet in the registry and must not be moved.
    """
    heads = migrate.upgrade()
    password = auth.ensure_admin()
    moved = artifacts.sweep(registry.known_artifact_dirs()) if sweep else []
    return StartupReport(heads, password, moved)
