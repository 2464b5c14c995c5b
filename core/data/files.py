"""Reading users and drift files: CSV or Parquet, within the size limits, as text cells.

Limits are checked before the data is read (a Parquet footer, a CSV's size and row count), so
a huge upload costs nothing. A malformed file is a :class:`BadInput` or
:class:`ValidationFailed` naming the line or column; :mod:`core.data.validation` checks the
cells afterwards.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.config import get_settings
from core.data.categories import CATEGORIES
from core.data.validation import MAX_EXAMPLES, USER_ID
from core.errors import BadInput, Problem, ValidationFailed


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
