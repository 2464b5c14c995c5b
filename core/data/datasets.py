"""Users datasets: validate, store as immutable versions, load back verified.

A users file has ``user_id`` and the 29 category columns (0–5, 0 = not rated), optionally a
``timestamp``. Validation collects every problem it finds, each naming the column and a few
example rows (spreadsheet line numbers for CSV), because the person fixing the file needs all
of them at once. A rejected file changes nothing: the stored copy is written to a staging
name and renamed into place only inside the transaction that records it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from core.data.categories import CATEGORIES, MAX_RATING, MIN_RATING
from core.db import is_postgres, transaction
from core.db.tables import DatasetRow
from core.errors import (
    AlreadyExists,
    ArtifactIntegrityError,
    BadInput,
    NotFound,
    Problem,
    ValidationFailed,
)
from core.registry.artifacts import sha256_file

USER_ID = "user_id"
TIMESTAMP = "timestamp"
MAX_EXAMPLES = 5
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    version: int
    sha256: str
    source_sha256: str
    source_name: str
    rows: int
    path: str
    stats: dict[str, Any]
    created_at: dt.datetime
    created_by: str
    unchanged: bool = field(default=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "rows": self.rows,
            "source_name": self.source_name,
            "source_sha256": self.source_sha256,
            "path": self.path,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "unchanged": self.unchanged,
            "stats": self.stats,
        }


def _info(row: DatasetRow, unchanged: bool = False) -> DatasetInfo:
    return DatasetInfo(
        row.id,
        row.name,
        row.version,
        row.sha256,
        row.source_sha256,
        row.source_name,
        row.rows,
        row.path,
        dict(row.stats),
        row.created_at,
        row.created_by,
        unchanged,
    )


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


# ------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class FileLimits:
    """How much a users or drift file may hold, checked before its data is read: a Parquet
    file compresses well (5 MB held 40 million rows), so its size on disk says nothing."""

    rows: int
    bytes: int

    @classmethod
    def from_settings(cls) -> FileLimits:
        settings = get_settings()
        return cls(settings.max_file_rows, settings.max_file_bytes)

    def check(self, name: str, *, rows: int, columns: int, stored_bytes: int) -> None:
        if rows > self.rows:
            raise BadInput(
                f"{name} holds {rows:,} rows; the limit is {self.rows:,} (MAX_FILE_ROWS)"
            )
        decoded = rows * columns * 8  # at least 8 bytes a cell once read
        size = max(stored_bytes, decoded)
        if size > self.bytes:
            what = "its data takes" if stored_bytes >= decoded else "read, it would take"
            raise BadInput(
                f"{name} is too large: {what} {_mib(size)} ({rows:,} rows × {columns:,} "
                f"columns); the limit is {_mib(self.bytes)} (MAX_FILE_BYTES)"
            )


def _mib(n: int) -> str:
    return f"{n / 1024**2:,.1f} MiB"


def _check_file(path: Path, name: str) -> int:
    """The size of an existing, non-empty regular file, or BadInput naming what it is not."""
    if not path.exists():
        raise BadInput(f"file not found: {path}")
    if path.is_dir():
        raise BadInput(f"{path} is a folder, not a {name}")
    try:
        return path.stat().st_size
    except OSError as exc:
        raise BadInput(f"{path} cannot be read: {exc.strerror or exc}") from None


def _read_parquet(path: Path, limits: FileLimits, subject: str) -> pd.DataFrame:
    """A Parquet file, after its footer showed it within ``limits`` (nothing else is read
    before)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:  # pyarrow raises many types for a corrupt file
        raise BadInput(f"{subject} is not a readable Parquet file: {exc}") from None
    uncompressed = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        chunks = sum(group.column(j).total_uncompressed_size for j in range(group.num_columns))
        uncompressed += max(group.total_byte_size, chunks)
    limits.check(subject, rows=meta.num_rows, columns=meta.num_columns, stored_bytes=uncompressed)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - as above
        raise BadInput(f"{subject} is not a readable Parquet file: {exc}") from None


def read_table(path: Path, what: str, *, limits: FileLimits | None = None) -> pd.DataFrame:
    """Any CSV or Parquet table (the drift command's inputs), within the same limits as a
    users file; only an empty cell is missing (a rating typed as "n/a" stays text)."""
    path = Path(path)
    limits = limits or FileLimits.from_settings()
    if not path.exists():
        raise BadInput(f"{what} file {path} does not exist")
    size = _check_file(path, f"{what} file")
    subject = f"{what} file {path.name}"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = _read_parquet(path, limits, subject)
    elif suffix in (".csv", ".txt"):
        limits.check(subject, rows=0, columns=0, stored_bytes=size)
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""], nrows=limits.rows + 1)
        except pd.errors.EmptyDataError:
            raise BadInput(f"{subject} is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())
            raise BadInput(f"{subject} cannot be read: {reason}") from None
        if len(frame) > limits.rows:
            raise BadInput(
                f"{subject} holds more than {limits.rows:,} rows; the limit is "
                f"{limits.rows:,} (MAX_FILE_ROWS)"
            )
        limits.check(subject, rows=len(frame), columns=len(frame.columns), stored_bytes=size)
    else:
        raise BadInput(f"{subject} must be .csv or .parquet")
    if frame.empty:
        raise BadInput(f"{subject} has no rows")
    return frame


def read_users_file(path: Path, *, limits: FileLimits | None = None) -> tuple[pd.DataFrame, int]:
    """Read a CSV or Parquet file as text cells, and the file-line offset of row 0."""
    limits = limits or FileLimits.from_settings()
    size = _check_file(path, "users file")
    if size == 0:
        raise ValidationFailed(str(path.name), [Problem(None, "empty", "the file is empty")])
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = _read_parquet(path, limits, path.name)
        dupes = [c for c in frame.columns if list(frame.columns).count(c) > 1]
        if dupes:
            raise ValidationFailed(
                path.name,
                [Problem(str(dupes[0]), "duplicate_column", f"column {dupes[0]!r} appears twice")],
            )
        return frame, 0
    if suffix not in (".csv", ".txt"):
        raise BadInput(
            f"unsupported file type {suffix or '(none)'!r} for {path.name}: use .csv or .parquet"
        )
    limits.check(path.name, rows=0, columns=0, stored_bytes=size)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{path.name} is not UTF-8 text (byte {exc.start}: "
            f"{raw[exc.start : exc.start + 1]!r}); save it as UTF-8 CSV"
        ) from None
    if "\x00" in text:
        raise BadInput(f"{path.name} contains NUL bytes; it is not a text CSV file")
    if not text.strip():
        raise ValidationFailed(path.name, [Problem(None, "empty", "the file is empty")])
    rows = _csv_rows(text, path.name)
    header = next(rows)[1]
    stripped = [h.strip() for h in header]
    if len(stripped) > 1 and USER_ID not in stripped and not set(stripped) & set(CATEGORIES):
        shown = ", ".join(repr(h[:20]) for h in stripped[:3])
        raise ValidationFailed(
            path.name,
            [
                Problem(
                    None,
                    "no_header",
                    f"the first line is not a header: it holds {shown}, … where "
                    f"{USER_ID} and the {len(CATEGORIES)} category names were expected",
                )
            ],
        )
    problems = _header_problems(stripped)
    if problems:
        raise ValidationFailed(path.name, problems)
    ragged = []
    count = 0
    for line, fields in rows:  # the rest of the same pass
        if not fields:
            continue
        count += 1
        if count > limits.rows:
            raise BadInput(
                f"{path.name} holds more than {limits.rows:,} rows; the limit is "
                f"{limits.rows:,} (MAX_FILE_ROWS)"
            )
        if len(fields) != len(header):
            ragged.append((line, len(fields)))
    limits.check(path.name, rows=count, columns=len(header), stored_bytes=size)
    if ragged:
        shown = ", ".join(f"line {line} has {n}" for line, n in ragged[:MAX_EXAMPLES])
        raise BadInput(
            f"{path.name} is not well-formed CSV: the header has {len(header)} fields but "
            f"{shown} ({len(ragged)} line(s) in all)"
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            on_bad_lines="error",
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        raise BadInput(f"{path.name} is not well-formed CSV: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, 2  # row 0 is on line 2 (after the header)


def _csv_rows(text: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of a CSV text; a malformed file is a :class:`BadInput` naming the line."""
    reader = csv.reader(io.StringIO(text))
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = str(exc)
            if "field larger than field limit" in reason:
                reason = f"a cell holds more than {csv.field_size_limit():,} characters"
            raise BadInput(
                f"{name} is not well-formed CSV at line {reader.line_num}: {reason}"
            ) from None
        yield reader.line_num, fields


def _header_problems(header: list[str]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for position, name in enumerate(header, start=1):
        if not name:
            problems.append(
                Problem(None, "blank_column", f"column {position} of the header has no name")
            )
            continue
        if name in seen:
            problems.append(Problem(name, "duplicate_column", f"column {name!r} appears twice"))
        seen.add(name)
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
        problems.append(
            Problem(
                None,
                "delimiter",
                "the header is one column containing "
                f"{header[0][:40]!r}…; the file must be comma-separated",
            )
        )
    return problems


# ------------------------------------------------------------------------ validation


def _examples(
    mask: np.ndarray, values: pd.Series, offset: int
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    idx = np.flatnonzero(mask)[:MAX_EXAMPLES]
    rows = tuple(int(i) + offset for i in idx)
    examples = tuple(repr(values.iloc[int(i)])[:40] for i in idx)
    return rows, examples


def _where(rows: tuple[int, ...], offset: int) -> str:
    unit = "line" if offset else "row"
    return f"{unit}{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows))}"


def validate_users(frame: pd.DataFrame, *, subject: str, line_offset: int = 0) -> pd.DataFrame:
    """Return the normalised frame (user_id, [timestamp], 29 float columns) or raise."""
    problems: list[Problem] = []
    columns = [str(c) for c in frame.columns]
    missing = [c for c in [USER_ID, *CATEGORIES] if c not in columns]
    if missing:
        near = {c.lower().strip(): c for c in columns}
        hints = [f"{m!r} (found {near[m.lower()]!r})" for m in missing if m.lower() in near]
        msg = f"missing column(s): {', '.join(repr(m) for m in missing)}"
        if hints:
            msg += "; names differ only in case or spaces: " + ", ".join(hints)
        problems.append(Problem(None, "missing_columns", msg))
        raise ValidationFailed(subject, problems)
    if len(frame) == 0:
        raise ValidationFailed(
            subject, [Problem(None, "no_rows", "the file has a header but no rows")]
        )
    offset = line_offset

    ids = frame[USER_ID].astype(str).str.strip()
    blank = (ids == "") | frame[USER_ID].isna().to_numpy()
    if blank.any():
        rows, _ = _examples(np.asarray(blank), ids, offset)
        problems.append(
            Problem(USER_ID, "missing_id", f"{USER_ID!r} is empty at {_where(rows, offset)}", rows)
        )
    dup = ids.duplicated(keep=False).to_numpy() & ~np.asarray(blank)
    if dup.any():
        rows, ex = _examples(dup, ids, offset)
        problems.append(
            Problem(
                USER_ID,
                "duplicate_id",
                f"duplicate {USER_ID} values "
                f"{', '.join(sorted(set(ex)))} at {_where(rows, offset)}",
                rows,
                ex,
            )
        )

    ratings = np.empty((len(frame), len(CATEGORIES)))
    for j, col in enumerate(CATEGORIES):
        raw = frame[col]
        is_text = np.zeros(len(raw), dtype=bool)
        if raw.dtype == object or pd.api.types.is_string_dtype(raw):
            text = raw.astype(str).str.strip()
            values = pd.to_numeric(text, errors="coerce")
            is_text = (
                values.isna().to_numpy()
                & ~text.str.lower().isin(["", "nan", "na", "null", "none"]).to_numpy()
            )
            if is_text.any():
                rows, ex = _examples(is_text, raw, offset)
                problems.append(
                    Problem(
                        col,
                        "text",
                        f"column {col!r} must be numeric but "
                        f"holds text {', '.join(ex)} at {_where(rows, offset)}"
                        f" ({int(is_text.sum())} cell(s))",
                        rows,
                        ex,
                    )
                )
            values_np = values.to_numpy(dtype=float)
        elif pd.api.types.is_bool_dtype(raw) or not pd.api.types.is_numeric_dtype(raw):
            is_text[:] = True
            rows, ex = _examples(is_text, raw, offset)
            problems.append(
                Problem(col, "type", f"column {col!r} has type {raw.dtype}, not numbers", rows, ex)
            )
            values_np = np.zeros(len(raw))
        else:
            values_np = raw.to_numpy(dtype=float)
        nan = np.isnan(values_np) & ~is_text
        if nan.any():
            rows, ex = _examples(nan, raw, offset)
            problems.append(
                Problem(
                    col,
                    "missing",
                    f"column {col!r} has {int(nan.sum())} "
                    f"missing/NaN value(s) at {_where(rows, offset)}; use 0 "
                    "for 'not rated'",
                    rows,
                    ex,
                )
            )
        inf = np.isinf(values_np)
        if inf.any():
            rows, ex = _examples(inf, raw, offset)
            problems.append(
                Problem(
                    col,
                    "infinite",
                    f"column {col!r} has infinite values at {_where(rows, offset)}",
                    rows,
                    ex,
                )
            )
        finite = np.isfinite(values_np)
        out = finite & ((values_np < MIN_RATING) | (values_np > MAX_RATING))
        if out.any():
            rows, ex = _examples(out, raw, offset)
            problems.append(
                Problem(
                    col,
                    "range",
                    f"column {col!r} has values outside 0–5: "
                    f"{', '.join(ex)} at {_where(rows, offset)}",
                    rows,
                    ex,
                )
            )
        ratings[:, j] = np.where(finite, values_np, 0.0)

    unrated = ~(ratings > 0).any(axis=1)
    if unrated.any() and not problems:
        rows, ex = _examples(np.asarray(unrated), ids, offset)
        problems.append(
            Problem(
                None,
                "no_ratings",
                f"{int(unrated.sum())} user(s) rated no "
                f"category (all 0), e.g. {', '.join(ex)} at "
                f"{_where(rows, offset)}",
                rows,
                ex,
            )
        )

    stamps = None
    if TIMESTAMP in columns:
        stamps = pd.to_datetime(frame[TIMESTAMP], utc=True, errors="coerce", format="mixed")
        bad = stamps.isna().to_numpy()
        if bad.any():
            rows, ex = _examples(bad, frame[TIMESTAMP], offset)
            problems.append(
                Problem(
                    TIMESTAMP,
                    "timestamp",
                    f"column {TIMESTAMP!r} has "
                    f"unreadable times {', '.join(ex)} at "
                    f"{_where(rows, offset)}",
                    rows,
                    ex,
                )
            )
    if problems:
        raise ValidationFailed(subject, problems)

    out_frame = pd.DataFrame(ratings, columns=list(CATEGORIES))
    if stamps is not None:
        out_frame.insert(0, TIMESTAMP, stamps.to_numpy())
    out_frame.insert(0, USER_ID, ids.to_numpy())
    return out_frame


def column_stats(frame: pd.DataFrame) -> dict[str, Any]:
    """Per-column figures shown on the dashboard and used as the drift reference summary."""
    stats: dict[str, Any] = {}
    for col in CATEGORIES:
        v = frame[col].to_numpy(dtype=float)
        rated = v[v > 0]
        counts = np.bincount(np.rint(v).astype(int), minlength=6)[:6]
        stats[col] = {
            "share_rated": float((v > 0).mean()),
            "mean_rated": float(rated.mean()) if rated.size else None,
            "std_rated": float(rated.std()) if rated.size else None,
            "counts": [int(c) for c in counts],
        }
    summary: dict[str, Any] = {
        "columns": stats,
        "ratings_per_user": float((frame[list(CATEGORIES)] > 0).sum(axis=1).mean()),
    }
    if TIMESTAMP in frame.columns:
        summary["time_range"] = [
            frame[TIMESTAMP].min().isoformat(),
            frame[TIMESTAMP].max().isoformat(),
        ]
    return summary


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
                return _info(latest, unchanged=True)
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
            info = _info(row)
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
        return _info(row)


def resolve(ref: str) -> DatasetInfo:
    name, version = parse_ref(ref)
    return get_dataset(name, version)


def get_dataset_by_id(dataset_id: int) -> DatasetInfo:
    with transaction(write=False) as s:
        row = s.get(DatasetRow, dataset_id)
        if row is None:
            raise NotFound(f"unknown dataset id {dataset_id}")
        return _info(row)


def list_datasets() -> list[DatasetInfo]:
    with transaction(write=False) as s:
        rows = s.scalars(select(DatasetRow).order_by(DatasetRow.name, DatasetRow.version.desc()))
        return [_info(r) for r in rows]


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
