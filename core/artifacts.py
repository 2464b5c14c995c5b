"""Versioned artifact folders: ``<ARTIFACTS_DIR>/<family>/v<version>/``.

Files are written to a staging folder on the same file system and moved into place in one
rename, so a reader never sees half a version. The SHA-256 of every file is recorded in
``metadata.json`` and in the registry; :func:`verify` compares them before anything is loaded,
because joblib and Keras files can run code when unpickled.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from core.config import PROJECT_ROOT, get_settings
from core.errors import AlreadyExists, ArtifactIntegrityError, CoreError

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"
STAGING = ".staging"
ORPHANS = ".orphans"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def root() -> Path:
    return get_settings().artifacts_root


def version_dir_name(family: str, model: str, version: str) -> str:
    """The folder of a version, relative to the artifacts root (stored in the registry).

    DESIGN.md's ``<family>/v<version>`` gains the model's name between the two, because two
    models of one family (say an SVD per city) would otherwise claim the same folder.
    """
    return f"{family}/{model}/v{version}"


@contextlib.contextmanager
def staging_dir() -> Iterator[Path]:
    """A fresh folder to write a version's files into; removed if it was not published."""
    path = root() / STAGING / uuid.uuid4().hex
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Published:
    """A version folder moved into place: where it is and the SHA-256 of every file."""

    relative_dir: str
    files: dict[str, str]


def publish(staged: Path, *, relative_dir: str, metadata: Mapping[str, Any]) -> Published:
    """Hash the staged files, write ``metadata.json`` and move the folder into place.

    The metadata written lists the SHA-256 of every other file; the registry keeps the hash of
    ``metadata.json`` itself, so editing either is detected.
    """
    files = {
        p.relative_to(staged).as_posix(): sha256_file(p)
        for p in _files_of(staged)
        if p.name != METADATA_FILE
    }
    if not files:
        raise CoreError("refusing to publish a version with no artifact files")
    meta = dict(metadata)
    meta["files"] = files
    meta_path = staged / METADATA_FILE
    meta_path.write_text(
        json.dumps(meta, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8"
    )
    files[METADATA_FILE] = sha256_file(meta_path)
    _fsync_tree(staged)
    final = root() / relative_dir
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise AlreadyExists(
            f"artifact folder {relative_dir} already exists; "
            "run `python -m core init` to clear folders the registry lost"
        )
    os.rename(staged, final)
    return Published(relative_dir, files)


def _fsync_tree(folder: Path) -> None:
    for p in _files_of(folder):
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())


def unpublish(relative_dir: str) -> None:
    """Remove a folder whose registry row was never committed."""
    path = root() / relative_dir
    if path.exists():
        trash = root() / STAGING / f"unpublished-{uuid.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def verify(relative_dir: str, files: Mapping[str, str]) -> Path:
    """Check every recorded file against its SHA-256; return the folder if all match."""
    folder = root() / relative_dir
    if not folder.is_dir():
        raise ArtifactIntegrityError(f"artifact folder {relative_dir} is missing")
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"artifact file {relative_dir}/{name} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactIntegrityError(
                f"artifact file {relative_dir}/{name} was modified: its SHA-256 is "
                f"{actual[:12]}…, the registry recorded {expected[:12]}…"
            )
    return folder


def check(relative_dir: str, files: Mapping[str, str]) -> dict[str, str]:
    """Per-file integrity status for display: ``ok``, ``missing`` or ``modified``."""
    folder = root() / relative_dir
    status = {}
    for name, expected in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            status[name] = "missing"
        else:
            status[name] = "ok" if sha256_file(path) == expected else "modified"
    return status


def sweep(known_dirs: set[str], *, staging_older_than_s: float = 3600.0) -> list[str]:
    """Move version folders the registry does not know aside; clear old staging folders.

    A process killed between publishing and committing leaves such a folder; nothing reads
    it, but it would block the version number. Returns the folders moved.
    """
    base = root()
    moved: list[str] = []
    if not base.exists():
        return moved
    for vdir in sorted(base.glob("*/*/v*")):
        rel = vdir.relative_to(base).as_posix()
        if vdir.is_dir() and not rel.startswith(".") and rel not in known_dirs:
            dest = base / ORPHANS / f"{rel.replace('/', '-')}-{uuid.uuid4().hex[:8]}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(vdir, dest)
            moved.append(rel)
            log.warning("moved unregistered artifact folder %s to %s", rel, dest)
    staging = base / STAGING
    if staging.exists():
        cutoff = time.time() - staging_older_than_s
        for p in staging.iterdir():
            if p.stat().st_mtime < cutoff:
                shutil.rmtree(p, ignore_errors=True)
    return moved


# ------------------------------------------------------------------ provenance helpers

DEFAULT_LIBRARIES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "joblib",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "h5py",
)


def library_versions(names: tuple[str, ...] = DEFAULT_LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that may have written a version's files."""
    found = {}
    for name in names:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            found[name] = importlib_metadata.version(name)
    return found


@functools.cache
def code_revision() -> str:
    """The git commit of the code that wrote a version ('unknown' outside a checkout)."""
    env = os.environ.get("CODE_REVISION")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        rev = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def python_version() -> str:
    return platform.python_version()
