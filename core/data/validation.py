"""The users file's format and its check: every problem at once, each with example rows.

A users file has ``user_id`` and the 29 category columns (0–5, 0 = not rated), optionally a
``timestamp``. Validation collects every problem it finds, each naming the column and a few
example rows (spreadsheet line numbers for CSV), because the person fixing the file needs all
of them at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.data.categories import CATEGORIES, MAX_RATING, MIN_RATING
from core.errors import Problem, ValidationFailed

USER_ID = "user_id"
TIMESTAMP = "timestamp"
MAX_EXAMPLES = 5


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
