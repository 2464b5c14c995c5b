"""Users and drift files are refused by their rows and uncompressed size before their data is
read: a 5 MB Parquet file of 40 million rows took 2.9 GB before a memory cap stopped it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.accounts import bootstrap
from core.cli import main
from core.config import reset_settings
from core.data import datasets
from core.data.generator import generate_users
from tests.conftest import PROJECT_ROOT, RegistryEnv

ROWS = 40_000_000

# Runs the command line in a process and reports that process's peak memory on stderr. The
# peak is VmHWM, the high-water mark of this program's own memory: ru_maxrss would also count
# the RSS the process had before exec, i.e. the forking test process's (1.4 GB late in a run).
MEASURED = (
    "import sys\n"
    "from core.cli import main\n"
    "status = main(sys.argv[1:])\n"
    "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
    "peak = int(hwm.split()[1]) // 1024\n"
    "sys.stderr.write(f'peak_mib={peak}\\n')\n"
    "sys.exit(status)\n"
)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 million rows in a few hundred kilobytes (constant columns compress to nothing)."""
    path = tmp_path_factory.mktemp("bomb") / "users.parquet"
    zeros = pa.array(np.zeros(ROWS, dtype=np.int8))
    pq.write_table(
        pa.table({"user_id": zeros, "museums": zeros}),
        path,
        row_group_size=4_000_000,
        compression="zstd",
    )
    assert path.stat().st_size < 5_000_000
    return path


def run_measured(env: dict[str, str], *args: str) -> tuple[int, str, int]:
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    proc = subprocess.run(
        [sys.executable, "-c", MEASURED, *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    *lines, last = proc.stderr.strip().splitlines()
    return proc.returncode, "\n".join(lines), int(last.removeprefix("peak_mib="))


def test_a_parquet_bomb_is_refused_from_its_footer(backend: RegistryEnv, bomb: Path) -> None:
    bootstrap.ensure_ready()  # the first admin is made (and announced) before
    status, err, peak_mib = run_measured(backend.env, "data", "ingest", str(bomb), "--name", "x")
    assert status == 2, err
    assert err == (
        f"error: users.parquet holds {ROWS:,} rows; the limit is 1,000,000 (MAX_FILE_ROWS)"
    )
    assert peak_mib < 600, peak_mib  # the interpreter with pandas and pyarrow loaded
    assert datasets.list_datasets() == []


def test_drift_refuses_the_bomb_on_either_side(bomb: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    generate_users(50, seed=1).to_csv(small, index=False)
    for ref, cur, side in ((bomb, small, "reference"), (small, bomb, "current")):
        status, err, peak_mib = run_measured({}, "drift", str(ref), str(cur))
        assert status == 2, err
        assert err.startswith(f"error: {side} file users.parquet holds {ROWS:,} rows"), err
        assert peak_mib < 600, peak_mib


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> object:
    """Small limits through the environment, as an operator would set them."""

    def set_limits(rows: int, size: int) -> None:
        monkeypatch.setenv("MAX_FILE_ROWS", str(rows))
        monkeypatch.setenv("MAX_FILE_BYTES", str(size))
        reset_settings()

    yield set_limits
    monkeypatch.delenv("MAX_FILE_ROWS", raising=False)
    monkeypatch.delenv("MAX_FILE_BYTES", raising=False)
    reset_settings()


def _files(root: Path, rows: int) -> dict[str, Path]:
    frame = generate_users(rows, seed=3)
    out = {"csv": root / "users.csv", "parquet": root / "users.parquet"}
    frame.to_csv(out["csv"], index=False)
    frame.to_parquet(out["parquet"], index=False)
    return out


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_row_and_size_limits_come_from_the_settings(
    backend: RegistryEnv, tmp_path: Path, capsys, limits, kind: str
) -> None:
    bootstrap.ensure_ready()
    files = _files(tmp_path, 200)
    path = str(files[kind])
    limits(199, 10**9)
    assert main(["data", "ingest", path, "--name", "u"]) == 2
    err = capsys.readouterr().err
    assert "rows; the limit is 199 (MAX_FILE_ROWS)" in err and err.count("\n") == 1, err
    assert main(["drift", path, path]) == 2
    assert "the limit is 199 (MAX_FILE_ROWS)" in capsys.readouterr().err

    # 200 rows × 30 or 31 columns × 8 bytes is about 48 KB once read.
    limits(200, 20_000)
    assert main(["data", "ingest", path, "--name", "u"]) == 2
    err = capsys.readouterr().err
    assert "too large" in err and "(MAX_FILE_BYTES)" in err and err.count("\n") == 1, err
    assert datasets.list_datasets() == []

    limits(200, 10**7)  # at the limit: accepted
    assert main(["data", "ingest", path, "--name", "u"]) == 0
    assert [d.rows for d in datasets.list_datasets()] == [200]
