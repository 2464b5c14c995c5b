"""The explicit sweep of artifact folders this registry published but never registered.

Never run implicitly (not by ``init``, not by a worker taking the lead): with a shared
``ARTIFACTS_DIR``, a process pointed at another or an empty database must not judge folders
it did not write. :func:`core.registry.orphans.sweep` holds the rules of what may be moved.
"""

from __future__ import annotations

import math

from core import registry
from core.accounts.auth import Actor, require
from core.db import migrate
from core.errors import BadInput, CoreError
from core.registry import orphans
from core.registry.orphans import SweepEntry

MAX_AGE_MINUTES = 10 * 365 * 24 * 60


def sweep(
    *,
    actor: Actor,
    older_than_minutes: float = orphans.DEFAULT_SWEEP_AGE_S / 60,
    dry_run: bool = False,
) -> list[SweepEntry]:
    """Move aside this registry's unfinished writes older than ``older_than_minutes`` (an
    operator's decision); with ``dry_run``, only say what would be done."""
    require(actor, "operate", "sweep artifact folders")
    if not math.isfinite(older_than_minutes) or not 0 <= older_than_minutes <= MAX_AGE_MINUTES:
        raise BadInput(
            f"--older-than must be from 0 to {MAX_AGE_MINUTES} minutes, got {older_than_minutes}"
        )
    # Read-only up to the moves: it runs beside a registration in progress (whose write
    # transaction SQLite would make it wait for), and never migrates a database itself.
    if not migrate.is_current():
        raise CoreError(
            "the registry's schema is missing or not up to date; run `python -m core init` "
            "against this database first (nothing was swept)"
        )
    return orphans.sweep(
        registry.known_artifact_dirs(), older_than_s=older_than_minutes * 60, dry_run=dry_run
    )
