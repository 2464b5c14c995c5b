"""Ingesting users files: good files become versions; bad ones change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.accounts.auth import SYSTEM, Actor
from core.data import datasets
from core.data.categories import CATEGORIES
from core.data.generator import DriftEpisode, generate_users
from core.errors import ArtifactIntegrityError, BadInput, PermissionDenied, ValidationFailed
from tests.conftest import tree_snapshot
from tests.fixtures.registry import registry_dump


def _good(tmp_path: Path, n: int = 200, name: str = "users.csv", seed: int = 0) -> Path:
    path = tmp_path / name
    frame = generate_users(n, seed=seed)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def test_ingest_csv_and_parquet_as_versions(backend, tmp_path: Path) -> None:
    first = datasets.ingest(_good(tmp_path), name="users", actor=SYSTEM)
    assert (first.name, first.version, first.rows) == ("users", 1, 200)
    assert len(first.sha256) == 64
    again = datasets.ingest(_good(tmp_path), name="users", actor=SYSTEM)
    assert again.unchanged and again.version == 1
    second = datasets.ingest(
        _good(tmp_path, name="more.parquet", seed=1), name="users", actor=SYSTEM
    )
    assert second.version == 2
    assert datasets.resolve("users").version == 2
    assert datasets.resolve("users@1").sha256 == first.sha256
    frame = datasets.load_users(first)
    assert list(frame.columns[:2]) == ["user_id", "timestamp"]
    assert list(frame.columns[2:]) == list(CATEGORIES)
    stats = first.stats["columns"]["museums"]
    assert 0 < stats["share_rated"] < 1 and sum(stats["counts"]) == 200


def test_tampered_dataset_file_is_refused(backend, tmp_path: Path) -> None:
    info = datasets.ingest(_good(tmp_path), name="users", actor=SYSTEM)
    stored = backend.data / info.path
    stored.write_bytes(stored.read_bytes() + b"x")
    with pytest.raises(ArtifactIntegrityError, match="was modified"):
        datasets.load_users(info)


def test_viewers_cannot_ingest(backend, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied):
        datasets.ingest(_good(tmp_path), name="users", actor=Actor("v", "viewer"))


def _csv_with(tmp_path: Path, mutate) -> Path:  # noqa: ANN001
    frame = generate_users(30, seed=3).astype({c: object for c in CATEGORIES})
    frame = mutate(frame) if mutate else frame
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


def _set(col: str, row: int, value):  # noqa: ANN001, ANN202
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, col] = value
        return frame

    return mutate


BAD_FRAMES = {
    "text in a numeric column": (
        _set("museums", 3, "lots"),
        "column 'museums' must be numeric but holds text 'lots' at line 5",
    ),
    "NaN": (_set("cafes", 0, "NaN"), "column 'cafes' has 1 missing/NaN value(s) at line 2"),
    "empty cell": (_set("parks", 7, ""), "column 'parks' has 1 missing/NaN value(s) at line 9"),
    "infinite": (_set("zoo", 2, "inf"), "column 'zoo' has infinite values at line 4"),
    "out of range": (_set("malls", 4, 7), "column 'malls' has values outside 0–5"),
    "negative": (_set("malls", 4, -1), "column 'malls' has values outside 0–5"),
    "missing column": (lambda f: f.drop(columns=["beaches"]), "missing column(s): 'beaches'"),
    "renamed column": (lambda f: f.rename(columns={"cafes": "Cafes"}), "'cafes' (found 'Cafes')"),
    "duplicate ids": (
        _set("user_id", 5, "u3-000001"),
        "duplicate user_id values 'u3-000001' at lines 3, 7",
    ),
    "user without ratings": (
        lambda f: f.assign(**{c: [0] * 30 if c == "x" else f[c] for c in []}).pipe(
            lambda g: g.assign(**{c: g[c].where(g.index != 6, 0) for c in CATEGORIES})
        ),
        "1 user(s) rated no category",
    ),
    "bad timestamp": (
        lambda f: _set("timestamp", 1, "yesterday-ish")(f.astype({"timestamp": object})),
        "column 'timestamp' has unreadable times 'yesterday-ish' at line 3",
    ),
    "header only": (lambda f: f.iloc[:0], "has a header but no rows"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_files_are_rejected_precisely_and_change_nothing(
    backend, tmp_path: Path, case: str
) -> None:
    datasets.ingest(_good(tmp_path), name="users", actor=SYSTEM)
    mutate, message = BAD_FRAMES[case]
    path = _csv_with(tmp_path, mutate)
    before_db, before_files = registry_dump(), tree_snapshot(backend.data)
    with pytest.raises(ValidationFailed) as err:
        datasets.ingest(path, name="users", actor=SYSTEM)
    assert message in str(err.value)
    assert registry_dump() == before_db
    assert tree_snapshot(backend.data) == before_files


RAW_FILES = {
    "empty file": (b"", "the file is empty"),
    "semicolons": (
        ("user_id;" + ";".join(CATEGORIES) + "\nu1;" + ";".join(["1"] * 29)).encode(),
        "must be comma-separated",
    ),
    "not utf-8": ("user_id,café\n1,é".encode("latin-1"), "is not UTF-8 text"),
    "duplicated column": (
        ("user_id,museums," + ",".join(CATEGORIES) + "\n").encode(),
        "column 'museums' appears twice",
    ),
    "ragged rows": (
        ("user_id," + ",".join(CATEGORIES) + "\nu1," + ",".join(["1"] * 29) + ",9,9\n").encode(),
        "not well-formed CSV",
    ),
    "utf-16 with a byte-order mark": (
        ("user_id," + ",".join(CATEGORIES) + "\n").encode("utf-16"),
        "is not UTF-8 text",
    ),
    "huge cell": (
        ("user_id," + ",".join(CATEGORIES) + "\nu1," + "9" * 2_000_000 + ",1" * 28).encode(),
        "at line 2: a cell holds more than 131,072 characters",
    ),
    "no header": (
        ("u1," + ",".join(["1"] * 29) + "\nu2," + ",".join(["2"] * 29) + "\n").encode(),
        "the first line is not a header: it holds 'u1', '1', '1', … where user_id",
    ),
    "spreadsheet formula": (
        (
            "user_id,"
            + ",".join(CATEGORIES)
            + '\nu1,"=HYPERLINK(""http://x"",""5"")",'
            + ",".join(["1"] * 28)
        ).encode(),
        f"column '{CATEGORIES[0]}' must be numeric but holds text '=HYPERLINK",
    ),
}


@pytest.mark.parametrize("case", list(RAW_FILES))
def test_malformed_files_are_rejected(sqlite_backend, tmp_path: Path, case: str) -> None:
    content, message = RAW_FILES[case]
    path = tmp_path / "raw.csv"
    path.write_bytes(content)
    before = registry_dump()
    with pytest.raises(BadInput, match=message):
        datasets.ingest(path, name="users", actor=SYSTEM)
    assert registry_dump() == before
    assert not (sqlite_backend.data / "datasets" / "users").exists()


def test_other_bad_paths(sqlite_backend, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="file not found"):
        datasets.ingest(tmp_path / "nope.csv", name="users", actor=SYSTEM)
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(BadInput, match="unsupported file type '.xlsx'"):
        datasets.ingest(tmp_path / "x.xlsx", name="users", actor=SYSTEM)
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(BadInput, match="not a readable Parquet file"):
        datasets.ingest(tmp_path / "x.parquet", name="users", actor=SYSTEM)
    with pytest.raises(BadInput, match="invalid dataset name"):
        datasets.ingest(_good(tmp_path), name="../etc", actor=SYSTEM)
    with pytest.raises(BadInput, match="expected an integer"):
        datasets.resolve("users@latest")


def test_parquet_with_text_column_is_named(sqlite_backend, tmp_path: Path) -> None:
    frame = generate_users(20, seed=1)
    frame["museums"] = frame["museums"].astype(str)
    frame.loc[2, "museums"] = "n/a?"
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ValidationFailed, match="column 'museums' must be numeric.*row 2"):
        datasets.ingest(path, name="users", actor=SYSTEM)


def test_generator_is_seeded_and_drift_shifts_summer_categories() -> None:
    a = generate_users(500, seed=7)
    b = generate_users(500, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_users(500, seed=8)[list(CATEGORIES)].equals(a[list(CATEGORIES)])
    ratings = a[list(CATEGORIES)].to_numpy()
    assert ((ratings > 0).sum(axis=1) >= 2).all()
    assert set(np.unique(ratings)) <= {0, 1, 2, 3, 4, 5}
    drifted = generate_users(4000, seed=7, days=20, drift=DriftEpisode(start_day=10))
    cut = drifted["timestamp"] >= drifted["timestamp"].min().normalize() + pd.Timedelta(days=10)
    before, after = drifted[~cut], drifted[cut]
    assert after["beaches"].mean() > before["beaches"].mean() + 0.5
    assert after["museums"].mean() < before["museums"].mean()
    assert abs(after["restaurants"].mean() - before["restaurants"].mean()) < 0.2


_INGEST_AT_THE_SIGNAL = """
import json, os, sys, time
from pathlib import Path
from core.data import datasets, files
from core.accounts.auth import SYSTEM
from core.errors import CoreError

path, name, ready, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
frame, offset = files.read_users_file(path)  # import and parse before the start line
ready.touch()
while not go.exists():
    time.sleep(0.001)
try:
    info = datasets.ingest(path, name=name, actor=SYSTEM)
    print(json.dumps({"version": info.version, "sha256": info.sha256, "path": info.path}))
except CoreError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_concurrent_ingests_never_delete_each_others_files(backend, tmp_path: Path) -> None:
    """Processes ingesting different files under one name at the same moment: each ends with
    its own version (or a clear refusal), and every registered version's file is intact."""
    import json
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import PROJECT_ROOT

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"} | backend.env
    n = 4
    for round_ in range(3):
        name = f"race{round_}"
        files = [
            _good(tmp_path, n=150, name=f"{name}-{i}.csv", seed=10 * round_ + i) for i in range(n)
        ]
        ready = [tmp_path / f"{name}-ready-{i}" for i in range(n)]
        go = tmp_path / f"{name}-go"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _INGEST_AT_THE_SIGNAL, str(f), name, str(r), str(go)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for f, r in zip(files, ready, strict=True)
        ]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "the ingest processes did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        won = [r for r in results if "version" in r]
        assert won, results
        assert sorted(r["version"] for r in won) == list(range(1, len(won) + 1)), results
        for info in datasets.list_datasets():
            if info.name == name:
                assert len(datasets.load_users(info)) == 150  # present and unmodified
        assert {i.version for i in datasets.list_datasets() if i.name == name} == {
            r["version"] for r in won
        }
        for r in results:
            if "error" in r:  # a refusal must say what to do, not lose anything
                assert "retry" in r["error"] or "exists" in r["error"], r


def test_a_refused_ingest_leaves_a_folder_it_did_not_write(backend, tmp_path: Path) -> None:
    """Another registry sharing DATA_DIR already wrote ``shared/v1``: this one refuses to
    take that number and leaves the other's file alone (it used to delete the folder)."""
    theirs = backend.data / "datasets" / "shared" / "v1" / "users.parquet"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"the other registry's dataset")
    with pytest.raises(BadInput, match="exists but is not registered"):
        datasets.ingest(_good(tmp_path), name="shared", actor=SYSTEM)
    assert theirs.read_bytes() == b"the other registry's dataset"
    assert datasets.list_datasets() == []
