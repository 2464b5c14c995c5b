"""The orphan sweep's rules: which unregistered version folders are this registry's own
unfinished writes, and moving them aside.

Every version folder carries a marker (:data:`core.registry.artifacts.MARKER`) from the moment
its files are staged until its registry row has committed. A process killed in between leaves
a folder no registry knows; :func:`sweep`, run only when an operator asks (``python -m core
artifacts sweep``, see :mod:`core.registry.artifact_sweep`), moves aside such a folder only
when its marker proves it is an unfinished write of *this* registry, old enough, by a process
that is gone. An unregistered folder without such proof (another registry sharing
``ARTIFACTS_DIR``, a registration in progress) is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import CoreError
from core.registry.artifacts import MARKER, STAGING, Store, object_store, registry_identity, root

log = logging.getLogger(__name__)
ORPHANS = ".orphans"
DEFAULT_SWEEP_AGE_S = 3600.0


@dataclass(frozen=True)
class SweepEntry:
    """One folder the sweep looked at: what it did (or would do) and why."""

    folder: str  # relative to the artifacts root: family/model/vX, or .staging/<id>
    action: str  # moved | would move | removed | would remove | marker cleared | left
    reason: str
    moved_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _marker_of(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        marker = json.loads(text)
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists (not ours to signal), or unreadable: assume it runs
    return True


def _why_not_ours(marker: dict[str, Any] | None, older_than_s: float, now: float) -> str | None:
    """None when ``marker`` proves an abandoned write of this registry; else why not."""
    if marker is None:
        return (
            "no unfinished-write marker: not a write this registry left unfinished "
            "(another registry sharing the folder, or a copy); left alone"
        )
    mine = registry_identity()
    if marker.get("registry") != mine:
        return f"written for another registry ({marker.get('registry')}); left alone"
    written = marker.get("written_at")
    if not isinstance(written, int | float):
        return "its marker records no time; left alone"
    age = now - float(written)
    if age < older_than_s:
        return f"written {age / 60:.0f} min ago, may still be registering; left alone"
    pid = marker.get("pid")
    if marker.get("host") == socket.gethostname() and isinstance(pid, int) and _alive(pid):
        return f"process {pid} that writes it is still running; left alone"
    return None


def _orphan_dest(rel: str, now: float) -> str:
    """``.orphans/<family>/<model>/v<version>.<UTC time>-<id>``: the original path stays
    readable in the new one."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{ORPHANS}/{rel}.{stamp}-{uuid.uuid4().hex[:6]}"


def _manifest(rel: str, dest: str, marker: dict[str, Any], now: float) -> str:
    return json.dumps(
        {
            "original": rel,
            "moved_to": dest,
            "moved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "registry": marker.get("registry"),
            "written_by": {k: marker.get(k) for k in ("host", "pid", "written_at")},
            "reason": "published but never registered (the writing process is gone)",
        },
        indent=2,
    )


def sweep(
    known_dirs: set[str],
    *,
    older_than_s: float = DEFAULT_SWEEP_AGE_S,
    dry_run: bool = False,
) -> list[SweepEntry]:
    """Move aside the version folders this registry published but never registered.

    A folder is moved only when its marker proves it is this registry's own write, older
    than ``older_than_s``, by a process that is gone (the registry's known folders
    ``known_dirs`` are never moved: a marker left on one is only cleared). It goes to
    ``.orphans/<family>/<model>/v<version>.<time>-<id>`` with a ``.json`` manifest beside it
    naming where it came from; nothing is deleted. Abandoned staging folders of this
    registry are removed (they were never published). Everything else is reported and left.
    """
    store = object_store()
    if store is not None:
        entries = _sweep_remote(known_dirs, store, older_than_s, dry_run)
    else:
        entries = _sweep_local(known_dirs, older_than_s, dry_run)
    return entries + _sweep_staging(older_than_s, dry_run)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _sweep_local(known_dirs: set[str], older_than_s: float, dry_run: bool) -> list[SweepEntry]:
    base = root()
    entries: list[SweepEntry] = []
    if not base.exists():
        return entries
    now = time.time()
    for vdir in sorted(base.glob("*/*/v*")):
        rel = vdir.relative_to(base).as_posix()
        if not vdir.is_dir() or rel.startswith("."):
            continue
        marker_path = vdir / MARKER
        if rel in known_dirs:
            if marker_path.exists():
                if not dry_run:
                    marker_path.unlink(missing_ok=True)
                entries.append(SweepEntry(rel, "marker cleared", "registered"))
            continue
        marker = _marker_of(_read_text(marker_path))
        why = _why_not_ours(marker, older_than_s, now)
        if why is not None or marker is None:
            entries.append(SweepEntry(rel, "left", why or ""))
            continue
        dest = _orphan_dest(rel, now)
        reason = "this registry's unfinished write, never registered"
        if dry_run:
            entries.append(SweepEntry(rel, "would move", reason, dest))
            continue
        target = base / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(vdir, target)
        target.with_name(target.name + ".json").write_text(
            _manifest(rel, dest, marker, now) + "\n", encoding="utf-8"
        )
        entries.append(SweepEntry(rel, "moved", reason, dest))
        log.warning("moved unregistered artifact folder %s to %s", rel, dest)
    return entries


def _sweep_staging(older_than_s: float, dry_run: bool) -> list[SweepEntry]:
    """Staging folders of this registry whose writer is gone: never published, so removed."""
    staging = root() / STAGING
    entries: list[SweepEntry] = []
    if not staging.is_dir():
        return entries
    now = time.time()
    for folder in sorted(staging.iterdir()):
        if not folder.is_dir() or folder.name == "downloads":
            continue
        rel = folder.relative_to(root()).as_posix()
        marker = _marker_of(_read_text(folder / MARKER))
        why = _why_not_ours(marker, older_than_s, now)
        if why is not None:
            entries.append(SweepEntry(rel, "left", why))
            continue
        reason = "this registry's staging folder, abandoned before publishing"
        if not dry_run:
            shutil.rmtree(folder, ignore_errors=True)
        entries.append(SweepEntry(rel, "would remove" if dry_run else "removed", reason))
    return entries


def _sweep_remote(
    known_dirs: set[str], store: Store, older_than_s: float, dry_run: bool
) -> list[SweepEntry]:
    fs, base, url = store
    entries: list[SweepEntry] = []
    try:
        found = fs.glob(f"{base}/*/*/v*")
    except Exception as exc:  # noqa: BLE001
        raise CoreError(f"could not list the artifact store {url}: {exc}") from exc
    prefix = base.lstrip("/") + "/"
    now = time.time()
    for path in sorted(found):
        rel = path.lstrip("/").removeprefix(prefix)
        if rel.startswith(".") or not fs.isdir(path):
            continue
        marker_path = f"{base}/{rel}/{MARKER}"
        if rel in known_dirs:
            if fs.exists(marker_path):
                if not dry_run:
                    fs.rm(marker_path)
                entries.append(SweepEntry(rel, "marker cleared", "registered"))
            continue
        text = (
            fs.cat_file(marker_path).decode("utf-8", "replace") if fs.exists(marker_path) else None
        )
        marker = _marker_of(text)
        why = _why_not_ours(marker, older_than_s, now)
        if why is not None or marker is None:
            entries.append(SweepEntry(rel, "left", why or ""))
            continue
        dest = _orphan_dest(rel, now)
        reason = "this registry's unfinished write, never registered"
        if dry_run:
            entries.append(SweepEntry(rel, "would move", reason, dest))
            continue
        fs.mv(path, f"{base}/{dest}", recursive=True)
        fs.pipe_file(f"{base}/{dest}.json", _manifest(rel, dest, marker, now).encode())
        entries.append(SweepEntry(rel, "moved", reason, dest))
        log.warning("moved unregistered artifact folder %s/%s to %s", url, rel, dest)
    return entries
