"""Users datasets: store validated files as immutable versions, load them back verified.

A file is read by :mod:`core.data.files` and checked by :mod:`core.data.validation`; a
rejected file changes nothing: the stored copy is written to a staging name and renamed into
place only inside the transaction that records it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import inputs
from core.accounts.auth import Actor, require
from core.config import get_settings
from core.data.categories import CATEGORIES
from core.data.files import read_users_file
from core.data.validation import column_stats, validate_users
from core.db import is_postgres, transaction
from core.db.rows import Plain
from core.db.tables import DatasetRow
from core.errors import (
    AlreadyExists,
    ArtifactIntegrityError,
    BadInput,
    NotFound,
)
from core.registry.artifacts import sha256_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class DatasetInfo(Plain):
    """A stored dataset version. Fields are in the order of :meth:`as_dict` (the CLI's JSON);
    ``id`` is the database's and stays out of it. ``unchanged`` says an ingest found the file
    identical to the latest version and returned that; equality ignores it, as it is about
    the call, not the dataset."""

    name: str
    version: int
    sha256: str
    rows: int
    source_name: str
    source_sha256: str
    path: str
    created_at: dt.datetime
    created_by: str
    unchanged: bool = False
    stats: dict[str, Any]
    id: int

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetInfo):
            return NotImplemented
        mine, theirs = dict(self.__dict__), dict(other.__dict__)
        mine.pop("unchanged")
        theirs.pop("unchanged")
        return mine == theirs

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        del out["id"]
        return out


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` → (name, version or None for the latest)."""
    name, _, version = ref.partition("@")
    if not name:
        raise BadInput(f"invalid dataset reference {ref!r}: expected NAME or NAME@VERSION")
    if not version:
        return name, None
    try:
        number = int(version.removeprefix("v"))
    except ValueError:
        raise BadInput(
            f"invalid dataset version {version!r} in {ref!r}: expected an integer"
        ) from None
    return name, inputs.record_id(number, f"the version of dataset {name!r}")


# ------------------------------------------------------------------------ ingest


def _datasets_root() -> Path:
    return get_settings().data_root / "datasets"


def _sha256_bytes_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# First key of the two-key advisory lock that queues ingests of one dataset name on
# PostgreSQL (core.retraining.leader uses another first key; SQLite's writers queue on BEGIN
# IMMEDIATE).
INGEST_LOCK_NAMESPACE = 0x504C4E44  # "PLND"


def _queue_ingests_of(s: Session, name: str) -> None:
    """Hold, until this transaction ends, the lock of dataset ``name``: two ingests of one
    name take turns, so the second sees the first's version and takes the next number."""
    if is_postgres(s):
        scope = f"{get_settings().database_schema or 'public'}:dataset:{name}"
        s.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:scope))"),
            {"ns": INGEST_LOCK_NAMESPACE, "scope": scope},
        )


def ingest(path: Path, *, name: str, actor: Actor) -> DatasetInfo:
    """Validate a users file and record it as the next version of dataset ``name``.

    Ingesting a file identical to the latest version returns that version (``unchanged``).
    Concurrent ingests of one name take turns; whatever fails removes only the version folder
    this call created itself, never one another process (or another registry sharing
    ``DATA_DIR``) wrote.
    """
    require(actor, "operate", "ingest datasets")
    if not _NAME.match(name or ""):
        raise BadInput(f"invalid dataset name {name!r}: use letters, digits and ._-")
    path = Path(path)
    frame, offset = read_users_file(path)
    clean = validate_users(frame, subject=path.name, line_offset=offset)
    source_sha = _sha256_bytes_of(path)
    stats = column_stats(clean)

    root = _datasets_root()
    staging = root / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    tmp = staging / f"{uuid.uuid4().hex}.parquet"
    created: Path | None = None  # the version folder this call made: the only one it removes
    try:
        clean.to_parquet(tmp, index=False)
        sha = sha256_file(tmp)
        with transaction() as s:
            _queue_ingests_of(s, name)
            latest = s.scalar(
                select(DatasetRow)
                .where(DatasetRow.name == name)
                .order_by(DatasetRow.version.desc())
                .limit(1)
            )
            if latest is not None and latest.source_sha256 == source_sha:
                return DatasetInfo.of(latest, unchanged=True)
            version = (latest.version if latest else 0) + 1
            folder = root / name / f"v{version}"
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                folder.mkdir()  # atomic: exactly one process creates (and so owns) it
            except FileExistsError:
                raise BadInput(
                    f"dataset folder {folder} exists but is not registered (another registry "
                    "sharing DATA_DIR, or an interrupted ingest); move it away first"
                ) from None
            created = folder
            final = folder / "users.parquet"
            os.replace(tmp, final)
            row = DatasetRow(
                name=name,
                version=version,
                sha256=sha,
                source_sha256=source_sha,
                source_name=path.name,
                rows=len(clean),
                path=final.relative_to(get_settings().data_root).as_posix(),
                stats=stats,
                created_by=actor.username,
            )
            s.add(row)
            s.flush()
            info = DatasetInfo.of(row)
        created = None  # committed: keep it
        return info
    except IntegrityError as exc:
        raise AlreadyExists(
            f"a version of dataset {name!r} was registered concurrently; retry"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def get_dataset(name: str, version: int | None = None) -> DatasetInfo:
    with transaction(write=False) as s:
        stmt = select(DatasetRow).where(DatasetRow.name == name)
        stmt = (
            stmt.where(DatasetRow.version == version)
            if version is not None
            else stmt.order_by(DatasetRow.version.desc()).limit(1)
        )
        row = s.scalar(stmt)
        if row is None:
            label = name if version is None else f"{name}@{version}"
            raise NotFound(f"unknown dataset {label!r}")
        return DatasetInfo.of(row)


def resolve(ref: str) -> DatasetInfo:
    name, version = parse_ref(ref)
    return get_dataset(name, version)


def get_dataset_by_id(dataset_id: int) -> DatasetInfo:
    with transaction(write=False) as s:
        row = s.get(DatasetRow, dataset_id)
        if row is None:
            raise NotFound(f"unknown dataset id {dataset_id}")
        return DatasetInfo.of(row)


def list_datasets() -> list[DatasetInfo]:
    with transaction(write=False) as s:
        rows = s.scalars(select(DatasetRow).order_by(DatasetRow.name, DatasetRow.version.desc()))
        return [DatasetInfo.of(r) for r in rows]


def count_datasets() -> int:
    with transaction(write=False) as s:
        return s.scalar(select(func.count()).select_from(DatasetRow)) or 0


def load_users(info: DatasetInfo) -> pd.DataFrame:
    """The stored frame, after its SHA-256 matched the registry's record."""
    path = get_settings().data_root / info.path
    if not path.is_file():
        raise ArtifactIntegrityError(f"dataset file {info.path} of {info.label} is missing")
    actual = sha256_file(path)
    if actual != info.sha256:
        raise ArtifactIntegrityError(
            f"dataset file {info.path} of {info.label} was modified: "
            f"SHA-256 {actual[:12]}…, recorded {info.sha256[:12]}…"
        )
    return pd.read_parquet(path)


def ratings_matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(CATEGORIES)].to_numpy(dtype=np.float64)
