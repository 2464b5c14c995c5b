"""Checks of the values people type or send: integers, times, JSON, files read and written.

One function per kind of input, used by every interface, so that each refuses the same bad
value with the same one-line :class:`~core.errors.BadInput` naming the problem, before it can
overflow a database column, a C integer or a ``datetime``, exhaust the interpreter's stack, or
leave half a file behind. Failures of the machine rather than of the input (a full disk) are
a :class:`~core.errors.StorageFull`, which interfaces report as a system failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from core.errors import BadInput, CoreError, StorageFull

# The databases' INTEGER columns are 32-bit on PostgreSQL; ids, versions and counts that reach
# a query stay within it (SQLite's 64-bit would overflow on larger Python integers anyway).
DB_INT_MAX = 2**31 - 1
# NumPy seeds its generators from any non-negative integer; 32 bits is plenty and printable.
SEED_MAX = 2**32 - 1
# A JSON file the command line reads in one piece (a batch of users) is at most this big.
MAX_JSON_BYTES = 64 * 1024**2

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def bounded_int(value: Any, what: str, *, minimum: int = 1, maximum: int = DB_INT_MAX) -> int:
    """``value`` as an int within [minimum, maximum]; bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            if isinstance(value, bool) or not isinstance(value, str):
                raise ValueError
            value = int(value.strip())
        except ValueError:
            raise BadInput(f"{what} must be a whole number, got {_short(value)}") from None
    if not minimum <= value <= maximum:
        raise BadInput(f"{what} must be between {minimum:,} and {maximum:,}, got {_short(value)}")
    return value


def record_id(value: Any, what: str) -> int:
    """A database id or version number: 1 … 2³¹−1."""
    return bounded_int(value, what, minimum=1, maximum=DB_INT_MAX)


def seed(value: Any, what: str = "seed") -> int:
    return bounded_int(value, what, minimum=0, maximum=SEED_MAX)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…{text[-8:]} ({len(text)} characters)"


# ------------------------------------------------------------------------------- times


def parse_key_values(items: Iterable[str], what: str = "hyperparameter") -> dict[str, str]:
    """``KEY=VALUE`` items (``--param`` options, lines of a text box) as a mapping of text.

    Keys and values are stripped; a later key wins. The values stay text: whoever uses them
    (a family's hyperparameters) checks the keys and converts the values.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"a {what} must be written KEY=VALUE, got {_short(item.strip())}")
        out[key.strip()] = value.strip()
    return out


def parse_time(text: str, what: str) -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime (a time without zone is taken as UTC).

    A time whose conversion to UTC leaves the calendar (``0001-01-01T00:00:00+14:00``) is
    refused here rather than overflowing in the database driver."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"{what} {text!r} is not a time: use ISO 8601, e.g. 2026-05-01T12:00:00+00:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        when = when.astimezone(dt.UTC)
    except OverflowError:
        raise BadInput(
            f"{what} {text!r} is out of range: in UTC it must fall between years 1 and 9999"
        ) from None
    return when


# ------------------------------------------------------------------------------- JSON


def parse_json(text: str, what: str) -> Any:
    """JSON text, or a one-line BadInput: malformed, nested too deeply, a number too long."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadInput(f"{what} is nested too deeply to be read as JSON") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BadInput(f"{what} cannot be read as JSON: {exc}") from None


def read_text(path: Path, what: str, *, max_bytes: int) -> str:
    """A UTF-8 text file, refused (naming the byte at fault) when binary, not UTF-8 (latin-1
    saved by a spreadsheet), missing, a folder or larger than ``max_bytes``."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"{what} {path} does not exist")
    if not path.is_file():
        raise BadInput(f"{what} {path} is not a file")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BadInput(
                f"{what} {path.name} is {size:,} bytes; the limit is {max_bytes:,} bytes"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if b"\x00" in raw:
        raise BadInput(f"{what} {path.name} holds NUL bytes: it is a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{what} {path.name} is not UTF-8 text (byte {exc.start}: "
            f"{raw[exc.start : exc.start + 1]!r}); save it as UTF-8"
        ) from None


def read_json_file(path: Path, what: str, *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    return parse_json(read_text(path, what, max_bytes=max_bytes), f"{what} {Path(path).name}")


# ------------------------------------------------------------------------------- writing


def output_failure(exc: OSError, path: Path | str, what: str) -> CoreError:
    """The typed error for an OSError met while writing ``path``: a full disk is the
    machine's failure; a path that is no folder or may not be written is the caller's."""
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_FULL:
        return StorageFull(f"no space left to write {what} {path}; nothing was written")
    if exc.errno in _NOT_ALLOWED or exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return BadInput(f"cannot write {what} {path}: {reason}")
    if exc.errno == errno.ENAMETOOLONG:
        return BadInput(f"cannot write {what}: the path is too long")
    return CoreError(f"cannot write {what} {path}: {reason}")


def prepare_output(path: Path, what: str) -> Path:
    """Make sure ``path`` can be written (its folder exists or is created; it is not a
    folder), before a command spends minutes on what it will write there."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{what} {path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadInput(
            f"cannot write {what} {path}: a part of its folder {path.parent} is a file"
        ) from None
    except OSError as exc:
        raise output_failure(exc, path.parent, f"the folder of {what}") from None
    return path


@contextlib.contextmanager
def writing(path: Path, what: str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block has written it completely, it
    is flushed to disk and renamed over ``path``. A failure (a full disk, an exception in the
    block) removes the temporary file, so ``path`` is either its old self or wholly new.

    The folder is created when missing; one that cannot be (a file in its place, no rights)
    is a BadInput naming it."""
    path = prepare_output(path, what)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise output_failure(exc, path, what) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text(path: Path, what: str, text: str) -> int:
    """Write ``text`` as UTF-8 through :func:`writing`; returns the bytes written."""
    data = text.encode("utf-8")
    with writing(path, what) as tmp:
        tmp.write_bytes(data)
    return len(data)


def write_with(path: Path, what: str, writer: Callable[[Path], object]) -> None:
    """Let ``writer`` (e.g. ``frame.to_parquet``) write the temporary file of :func:`writing`."""
    with writing(path, what) as tmp:
        writer(tmp)
