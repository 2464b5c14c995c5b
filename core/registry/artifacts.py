"""Versioned artifact folders: ``<ARTIFACTS_DIR>/<family>/<model>/v<version>/``.

Files are written to a staging folder on the same file system and moved into place in one
rename, so a reader never sees half a version. The SHA-256 of every file is recorded in
``metadata.json`` and in the registry; :func:`verify` compares them before anything is loaded,
because joblib and Keras files can run code when unpickled.

``ARTIFACTS_DIR`` may also be an fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://``
in tests). Object stores cannot rename a folder atomically, so there a version is uploaded
file by file with ``metadata.json`` last, and it only exists for readers once its registry
row commits (which happens after the upload; a failed commit deletes the upload again).
Models are loaded from a local cache of the store (``DATA_DIR/artifact-cache``); every file
is checked against its recorded SHA-256 when it is copied there and again before each load,
exactly as for a local folder.

Every version folder carries a marker (:data:`MARKER`) from the moment its files are staged
until its registry row has committed. A process killed in between leaves a folder no
registry knows; :mod:`core.registry.orphans` holds the rules by which an operator's sweep
moves such a folder aside. Who wrote a version (code revision, libraries) is
:mod:`core.registry.provenance`'s.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from core.config import get_settings
from core.errors import AlreadyExists, ArtifactIntegrityError, CoreError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"
STAGING = ".staging"
# Written into a version's folder before it is published and removed once its registry row
# committed: the proof the orphan sweep needs that an unregistered folder is an unfinished
# write of this registry (see :func:`core.registry.orphans.sweep`). Never hashed, never loaded.
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


def object_store() -> Store | None:
    """The object store of the settings; None when artifacts live in a local folder."""
    url = get_settings().artifacts_url
    if url is None:
        return None
    fs, base = _filesystem(url)
    return Store(fs, base, url)


def location() -> str:
    """Where artifacts are kept, for messages and the dashboard."""
    store = object_store()
    return str(root()) if store is None else store.url


def version_dir_name(family: str, model: str, version: str) -> str:
    """The folder of a version, relative to the artifacts root (stored in the registry).

    DESIGN.md's ``<family>/v<version>`` gains the model's name between the two, because two
    models of one family (say an SVD per city) would otherwise claim the same folder.
    """
    return f"{family}/{model}/v{version}"


def registry_identity() -> str:
    """Which registry a write belongs to: the SQLite file, or PostgreSQL's server, database
    and schema (never the credentials). Two registries sharing ``ARTIFACTS_DIR`` differ here,
    so neither's sweep can take the other's folders for its own."""
    settings = get_settings()
    if settings.sqlite_file is not None:
        return f"sqlite:{settings.sqlite_file.resolve()}"
    if settings.is_sqlite:  # in memory: one process is the whole registry
        return f"sqlite-memory:{socket.gethostname()}:{os.getpid()}"
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url())
    schema = settings.database_schema or "public"
    return f"postgresql:{url.host or 'localhost'}:{url.port or 5432}/{url.database}#{schema}"


def _write_marker(folder: Path, **extra: str) -> None:
    marker = {
        "registry": registry_identity(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "written_at": time.time(),
        **extra,
    }
    (folder / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")


# staged folder -> the version folder it was published as (for staging_dir to finish it)
_published: dict[Path, str] = {}
_published_lock = threading.Lock()


@contextlib.contextmanager
def staging_dir() -> Iterator[Path]:
    """A fresh folder to write a version's files into; removed if it was not published.

    Register the version inside the ``with`` block: once it has committed, leaving the block
    removes the folder's unfinished-write marker. A file-system failure while the files are
    written or published (a full disk, a read-only mount) becomes a :class:`CoreError` that
    says so: nothing was registered.
    """
    path = root() / STAGING / uuid.uuid4().hex
    completed = False
    try:
        path.mkdir(parents=True)
        _write_marker(path)
        yield path
        completed = True
    except OSError as exc:
        raise CoreError(
            f"could not write the version's files under {location()}: "
            f"{exc.strerror or exc}; nothing was registered"
        ) from exc
    finally:
        with _published_lock:
            published = _published.pop(path, None)
        if published is not None and completed:
            finish(published)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def finish(relative_dir: str) -> None:
    """Remove the unfinished-write marker of a version whose registry row has committed."""
    store = object_store()
    if store is not None:
        try:
            store.fs.rm(store.path(f"{relative_dir}/{MARKER}"))
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - the sweep removes it later
            log.warning("could not remove the marker of %s from the store: %s", relative_dir, exc)
    with contextlib.suppress(FileNotFoundError):
        (root() / relative_dir / MARKER).unlink()


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
        if p.name not in (METADATA_FILE, MARKER)
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
    # The folder carries its marker into place: no moment exists in which it is published,
    # unregistered and unmarked. Written anew so that its age counts from now.
    _write_marker(staged, relative_dir=relative_dir)
    _fsync_tree(staged)
    store = object_store()
    if store is not None:
        _upload(staged, relative_dir, files, store)
    final = root() / relative_dir
    if store is not None and final.exists():  # a stale cached copy; the store is the truth
        _discard(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise AlreadyExists(
            f"artifact folder {relative_dir} already exists but this registry does not list "
            "it (another registry sharing ARTIFACTS_DIR, or a registration that never "
            "finished: `python -m core artifacts sweep --dry-run` tells which)"
        )
    os.rename(staged, final)
    with _published_lock:
        _published[staged] = relative_dir
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
            f"artifact folder {relative_dir} already exists in {url} but this registry does "
            "not list it (another registry sharing the store, or a registration that never "
            "finished: `python -m core artifacts sweep --dry-run` tells which)"
        )
    current = ""
    try:
        fs.makedirs(target, exist_ok=True)  # a no-op on object stores; folders elsewhere
        current = MARKER
        fs.put_file(str(staged / MARKER), f"{target}/{MARKER}")  # first: see the module doc
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
    store = object_store()
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
    store = object_store()
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
    store = object_store()
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
    store = object_store()
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
    store = object_store()
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
    store = object_store()
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
