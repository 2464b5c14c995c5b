"""Versioned artifact folders: ``<ARTIFACTS_DIR>/<family>/<model>/v<version>/``.

Files are written to a staging folder on the same file system and moved into place in one
rename, so a reader never sees half a version. The SHA-256 of every file is recorded in
``metadata.json`` and in the registry; :func:`verify` compares them before anything is loaded,
because joblib and Keras files can run code when unpickled.

``ARTIFACTS_DIR`` may also be an fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://``
in tests). Object stores cannot rename a folder atomically, so there a version is uploaded
file by file with ``metadata.json`` last, and it only exists for readers once its registry
row commits (which happens after the upload; a failed commit deletes the upload again, and
:func:`sweep` moves aside what a killed process left). Models are loaded from a local cache
of the store (``DATA_DIR/artifact-cache``); every file is checked against its recorded
SHA-256 when it is copied there and again before each load, exactly as for a local folder.
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
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from core.config import PROJECT_ROOT, get_settings
from core.errors import AlreadyExists, ArtifactIntegrityError, CoreError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"
STAGING = ".staging"
ORPHANS = ".orphans"
# Written into a version's folder before it is published and removed once its registry row
# committed: the proof the orphan sweep needs that an unregistered folder is an unfinished
# write of this registry (see :func:`sweep`). Never hashed, never loaded.
MARKER = ".unfinished.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return _sha256_stream(fh)


def _sha256_stream(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def root() -> Path:
    """The local folder versions are read from (for an object store, its verified cache)."""
    return get_settings().artifacts_root


@functools.cache
def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    from fsspec.core import url_to_fs

    try:
        fs, path = url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise CoreError(f"cannot open the artifact store {url}: {exc}") from exc
    return fs, path.rstrip("/")


class Store(NamedTuple):
    """The object store behind ``ARTIFACTS_DIR``: its file system, base path and URL."""

    fs: AbstractFileSystem
    base: str
    url: str

    def path(self, relative: str) -> str:
        return f"{self.base}/{relative}"


def _store() -> Store | None:
    """The object store of the settings; None when artifacts live in a local folder."""
    url = get_settings().artifacts_url
    if url is None:
        return None
    fs, base = _filesystem(url)
    return Store(fs, base, url)


def location() -> str:
    """Where artifacts are kept, for messages and the dashboard."""
    store = _store()
    return str(root()) if store is None else store.url


def version_dir_name(family: str, model: str, version: str) -> str:
    """The folder of a version, relative to the artifacts root (stored in the registry).

    DESIGN.md's ``<family>/v<version>`` gains the model's name between the two, because two
    models of one family (say an SVD per city) would otherwise claim the same folder.
    """
    return f"{family}/{model}/v{version}"


@contextlib.contextmanager
def staging_dir() -> Iterator[Path]:
    """A fresh folder to write a version's files into; removed if it was not published.

    A file-system failure while the files are written or published (a full disk, a
    read-only mount) becomes a :class:`CoreError` that says so: nothing was registered.
    """
    path = root() / STAGING / uuid.uuid4().hex
    try:
        path.mkdir(parents=True)
        yield path
    except OSError as exc:
        raise CoreError(
            f"could not write the version's files under {location()}: "
            f"{exc.strerror or exc}; nothing was registered"
        ) from exc
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
    store = _store()
    if store is not None:
        _upload(staged, relative_dir, files, store)
    final = root() / relative_dir
    if store is not None and final.exists():  # a stale cached copy; the store is the truth
        _discard(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise AlreadyExists(
            f"artifact folder {relative_dir} already exists; "
            "run `python -m core init` to clear folders the registry lost"
        )
    os.rename(staged, final)
    return Published(relative_dir, files)


def _upload(staged: Path, relative_dir: str, files: Mapping[str, str], store: Store) -> None:
    """Copy a staged version to the object store, ``metadata.json`` last; all or nothing."""
    fs, url = store.fs, store.url
    target = store.path(relative_dir)
    try:
        taken = fs.exists(target)
    except Exception as exc:  # noqa: BLE001 - any store failure is reported the same way
        raise CoreError(f"the artifact store {url} cannot be reached: {exc}") from exc
    if taken:
        raise AlreadyExists(
            f"artifact folder {relative_dir} already exists in {url}; "
            "run `python -m core init` to clear folders the registry lost"
        )
    current = ""
    try:
        fs.makedirs(target, exist_ok=True)  # a no-op on object stores; folders elsewhere
        for name in sorted(files, key=lambda n: (n == METADATA_FILE, n)):
            current = name
            fs.put_file(str(staged / name), f"{target}/{name}")
    except Exception as exc:  # noqa: BLE001
        _remove_remote(fs, target)
        raise CoreError(
            f"could not write artifact file {relative_dir}/{current} to {url}: {exc}; "
            "nothing was registered"
        ) from exc


def _remove_remote(fs: AbstractFileSystem, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception as exc:  # noqa: BLE001 - best effort; sweep() finds what is left
        log.warning("could not remove %s from the artifact store: %s", path, exc)


def _discard(folder: Path) -> None:
    """Remove a folder: first renamed out of the way, so no reader sees it half deleted."""
    trash = root() / STAGING / f"discarded-{uuid.uuid4().hex}"
    trash.parent.mkdir(parents=True, exist_ok=True)
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for p in _files_of(folder):
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())


def unpublish(relative_dir: str) -> None:
    """Remove a folder whose registry row was never committed."""
    store = _store()
    if store is not None:
        _remove_remote(store.fs, store.path(relative_dir))
    path = root() / relative_dir
    if path.exists():
        _discard(path)


def unlisted(relative_dir: str, files: Mapping[str, str]) -> list[str]:
    """Files in a version's folder that the registry does not list (the store's and the local
    cache's, for an object store). A version is exactly the files it was registered with: a
    file dropped in beside them (a ``model.keras`` next to a legacy ``model.h5``) was never
    hashed, so it is an integrity failure even though nothing is meant to load it."""
    folder = root() / relative_dir
    names = []
    if folder.is_dir():
        names = [p.relative_to(folder).as_posix() for p in _files_of(folder)]
    store = _store()
    if store is not None:
        target = store.path(relative_dir)
        try:
            found = store.fs.find(target) if store.fs.exists(target) else []
        except Exception as exc:  # noqa: BLE001
            raise CoreError(f"the artifact store {store.url} cannot be reached: {exc}") from exc
        prefix = target.lstrip("/") + "/"
        names += [str(p).lstrip("/").removeprefix(prefix) for p in found]
    return sorted({n for n in names if n not in files and n != MARKER})


def _refuse_unlisted(relative_dir: str, files: Mapping[str, str]) -> None:
    extra = unlisted(relative_dir, files)
    if extra:
        raise ArtifactIntegrityError(
            f"artifact folder {relative_dir} holds {', '.join(extra)}, not among the files "
            "the registry recorded for this version; remove it (nothing unlisted is loaded)"
        )


def verify(relative_dir: str, files: Mapping[str, str]) -> Path:
    """Check every recorded file against its SHA-256 and that the folder holds nothing else;
    return the folder if so."""
    folder = root() / relative_dir
    store = _store()
    if store is not None:
        _fetch_verified(relative_dir, files, store)  # hashes every cached file once
        _refuse_unlisted(relative_dir, files)
        return folder
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
    _refuse_unlisted(relative_dir, files)
    return folder


def _fetch_verified(relative_dir: str, files: Mapping[str, str], store: Store) -> None:
    """Bring the cache of a version up to date: files missing there or differing from their
    recorded hash are downloaded again, and a download that does not match is refused."""
    folder = root() / relative_dir
    for name, expected in sorted(files.items()):
        local = folder / name
        if local.is_file() and sha256_file(local) == expected:
            continue
        remote = store.path(f"{relative_dir}/{name}")
        try:
            present = store.fs.exists(remote)
        except Exception as exc:  # noqa: BLE001
            raise CoreError(f"the artifact store {store.url} cannot be reached: {exc}") from exc
        if not present:
            raise ArtifactIntegrityError(
                f"artifact file {relative_dir}/{name} is missing in {store.url}"
            )
        try:
            actual = _download(store, remote, local, expected=expected)
        except Exception as exc:  # noqa: BLE001
            message = f"could not read {relative_dir}/{name} from {store.url}: {exc}"
            raise CoreError(message) from exc
        if actual != expected:
            raise ArtifactIntegrityError(
                f"artifact file {relative_dir}/{name} in {store.url} was modified: its SHA-256 "
                f"is {actual[:12]}…, the registry recorded {expected[:12]}…"
            )


def _download(store: Store, remote: str, local: Path, *, expected: str | None = None) -> str:
    """Copy a file of the store to ``local`` through a temporary name, so a reader never
    sees half a file; with ``expected``, only if its SHA-256 matches. Returns that hash.

    The partial file lives under the staging folder, not beside ``local``: a version's folder
    never holds a file the registry does not list, even for a moment."""
    local.parent.mkdir(parents=True, exist_ok=True)
    part = root() / STAGING / "downloads" / f"{uuid.uuid4().hex}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        store.fs.get_file(remote, str(part))
        actual = sha256_file(part)
        if expected is None or actual == expected:
            os.replace(part, local)
        return actual
    finally:
        part.unlink(missing_ok=True)


def check(relative_dir: str, files: Mapping[str, str]) -> dict[str, str]:
    """Per-file integrity status for display: ``ok``, ``missing`` or ``modified`` for each
    recorded file, and ``unlisted`` for a file in the folder the registry does not list."""
    store = _store()
    if store is not None:
        status = _check_remote(relative_dir, files, store)
    else:
        folder = root() / relative_dir
        status = {}
        for name, expected in sorted(files.items()):
            path = folder / name
            if not path.is_file():
                status[name] = "missing"
            else:
                status[name] = "ok" if sha256_file(path) == expected else "modified"
    for name in unlisted(relative_dir, files):
        status[name] = "unlisted"
    return status


def _check_remote(relative_dir: str, files: Mapping[str, str], store: Store) -> dict[str, str]:
    status = {}
    for name, expected in sorted(files.items()):
        remote = store.path(f"{relative_dir}/{name}")
        if not store.fs.exists(remote):
            status[name] = "missing"
            continue
        with store.fs.open(remote, "rb") as fh:
            status[name] = "ok" if _sha256_stream(fh) == expected else "modified"
    return status


def store_file(relative: str, local: Path) -> None:
    """Copy a file written under :func:`root` (a drift report) to the object store, if any,
    so every replica finds it."""
    store = _store()
    if store is not None:
        target = store.path(relative)
        try:
            store.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            store.fs.put_file(str(local), target)
        except Exception as exc:  # noqa: BLE001
            raise CoreError(f"could not write {relative} to {store.url}: {exc}") from exc


def local_file(relative: str) -> Path | None:
    """A file kept beside the versions (see :func:`store_file`) as a local path, or None."""
    path = root() / relative
    if path.is_file():
        return path
    store = _store()
    if store is None:
        return None
    try:
        if not store.fs.exists(store.path(relative)):
            return None
        _download(store, store.path(relative), path)
    except Exception as exc:  # noqa: BLE001 - missing is the honest answer
        log.warning("could not fetch %s from the artifact store: %s", relative, exc)
        return None
    return path


def sweep(known_dirs: set[str], *, staging_older_than_s: float = 3600.0) -> list[str]:
    """Move version folders the registry does not know aside; clear old staging folders.

    A process killed between publishing and committing leaves such a folder; nothing reads
    it, but it would block the version number. Returns the folders moved (for an object
    store, those moved in the store: the local folder is then only its cache).
    """
    moved = _sweep_local(known_dirs, staging_older_than_s)
    store = _store()
    return moved if store is None else _sweep_remote(known_dirs, store)


def _sweep_local(known_dirs: set[str], staging_older_than_s: float) -> list[str]:
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


def _sweep_remote(known_dirs: set[str], store: Store) -> list[str]:
    fs, base, url = store
    moved: list[str] = []
    try:
        found = fs.glob(f"{base}/*/*/v*")
    except Exception as exc:  # noqa: BLE001 - the next start tries again
        log.warning("could not list the artifact store %s: %s", url, exc)
        return moved
    prefix = base.lstrip("/") + "/"
    for path in sorted(found):
        rel = path.lstrip("/").removeprefix(prefix)
        if rel.startswith(".") or rel in known_dirs or not fs.isdir(path):
            continue
        dest = f"{base}/{ORPHANS}/{rel.replace('/', '-')}-{uuid.uuid4().hex[:8]}"
        fs.mv(path, dest, recursive=True)
        moved.append(rel)
        log.warning("moved unregistered artifact folder %s/%s to %s", url, rel, dest)
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
    """The code revision that wrote a version: ``CODE_REVISION`` from the environment, else
    the git commit of the checkout (``-dirty`` when tracked files changed), else 'unknown'.

    A container image holds no ``.git``; its build passes the commit in (``ARG
    CODE_REVISION`` in ``deploy/Dockerfile``), so versions trained there are traceable too.
    """
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
