"""Bad input on the command line: exit 2 and one line on stderr naming the problem; failures
of the environment (database down or missing, disk full): exit 1 and one line. Never a
traceback, never a half-written file.

The many input cases run ``core.cli.main`` in-process against a migrated registry on SQLite
and on PostgreSQL (the same code path as ``python -m core`` without a process start each);
the environment cases run real ``python -m core`` processes, the full-disk ones on a small
tmpfs mounted in a private mount namespace (``unshare -m``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.conftest import POSTGRES_URL, PROJECT_ROOT, RegistryEnv, make_env

PREFS = json.dumps([5, 0, 0, 3] + [0] * 25)
CENTRE = ["--lat", "40.4168", "--lng", "-3.7038"]
HUGE = "9" * 30


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``python -m core ARGS`` in-process: its exit status and stderr."""
    status = main(list(args))
    return status, capsys.readouterr().err


def assert_one_line(err: str, *fragments: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


def _files(root: Path) -> dict[str, Path]:
    """Batch files as people produce them by mistake."""
    entry = {"prefs": json.loads(PREFS), "lat": 40.4168, "lng": -3.7038}
    files = {
        "latin1": ('[{"name": "Mar\xeda"}]').encode("latin-1"),
        "binary": bytes(range(256)),
        "numbers": b'["1", "2"]',
        "deep": b"[" * 50_000 + b"]" * 50_000,
        "string_prefs": json.dumps([{**entry, "prefs": [str(v) for v in entry["prefs"]]}]).encode(),
        "ragged_prefs": json.dumps([{**entry, "prefs": [[1, 2], [3]]}]).encode(),
        "mask_text": json.dumps([{**entry, "mask": "abc"}]).encode(),
        "mask_object": json.dumps([{**entry, "mask": {}}]).encode(),
        "huge_lat": json.dumps([{**entry, "lat": 10**400}]).encode(),
        "huge_number": b"[" + b"9" * 5000 + b"]",
        "dict": b'{"prefs": []}',
        "unknown_key": json.dumps([{**entry, "user": "x"}]).encode(),
        "empty": b"",
    }
    out = {}
    for name, data in files.items():
        out[name] = root / f"{name}.json"
        out[name].write_bytes(data)
    out["folder"] = root
    (root / "file").write_text("a file where a folder is expected")
    return out


# (arguments, fragments of the message); {name} is replaced by the path of that batch file,
# {file} by a path whose folder is a file.
CASES: list[tuple[list[str], list[str]]] = [
    (["recommend", "x", "--prefs", PREFS, *CENTRE, "--mask", '"abc"'], ["--mask", "29"]),
    (["recommend", "x", "--prefs", PREFS, *CENTRE, "--mask", "{}"], ["--mask", "29"]),
    (["recommend", "x", "--prefs", PREFS, *CENTRE, "--mask", "[[1, 0], [1]]"], ["--mask"]),
    (["recommend", "x", "--prefs", PREFS, *CENTRE, "--mask", '["1"]'], ["--mask"]),
    (["recommend", "x", "--prefs", "[[1, 2], [3]]", *CENTRE], ["prefs", "equal length"]),
    (["recommend", "x", "--prefs", '["1", "2"]', *CENTRE], ["prefs must be numbers"]),
    (["recommend", "x", "--prefs", "[" * 50_000, *CENTRE], ["--prefs"]),
    (["recommend", "x", "--prefs", PREFS, *CENTRE, "-k", HUGE], ["k must be an integer"]),
    (["recommend", "x", "--users", "{latin1}"], ["latin1.json", "not UTF-8", "byte"]),
    (["recommend", "x", "--users", "{binary}"], ["binary.json", "NUL"]),
    (["recommend", "x", "--users", "{numbers}"], ["list of objects"]),
    (["recommend", "x", "--users", "{deep}"], ["deep.json", "nested too deeply"]),
    (["recommend", "x", "--users", "{string_prefs}"], ["entry 0 prefs", "numbers"]),
    (["recommend", "x", "--users", "{ragged_prefs}"], ["entry 0 prefs"]),
    (["recommend", "x", "--users", "{mask_text}"], ["entry 0 mask"]),
    (["recommend", "x", "--users", "{mask_object}"], ["entry 0 mask"]),
    (["recommend", "x", "--users", "{huge_lat}"], ["lat must be a number"]),
    (["recommend", "x", "--users", "{huge_number}"], ["huge_number.json", "JSON"]),
    (["recommend", "x", "--users", "{dict}"], ["list of objects"]),
    (["recommend", "x", "--users", "{unknown_key}"], ["entry 0", "user"]),
    (["recommend", "x", "--users", "{empty}"], ["empty.json", "not valid JSON"]),
    (["recommend", "x", "--users", "{folder}"], ["not a file"]),
    (["recommend", "x", "--users", "{folder}/missing.json"], ["does not exist"]),
    (["models", "list", "x", "--page", HUGE], ["--page", "between 1 and 2,147,483,647"]),
    (["models", "list", "x", "--page-size", HUGE], ["--page-size", "between"]),
    (["models", "list", "x", "--page", "-1"], ["--page", "between"]),
    (["runs", "show", HUGE], ["argument id", "between"]),
    (["runs", "show", "abc"], ["argument id", "whole number"]),
    (["runs", "list", "--limit", HUGE], ["--limit", "between"]),
    (["train", "svd", "--dataset", f"madrid@{HUGE}"], ["version of dataset 'madrid'"]),
    (["train", "svd", "--dataset", "madrid", "--seed", "-1"], ["--seed", "between 0"]),
    (["train", "svd", "--dataset", "madrid", "--folds", HUGE], ["--folds", "between 0 and 20"]),
    (["data", "generate", "--users", HUGE, "--out", "{folder}/u.csv"], ["--users", "between"]),
    (["data", "generate", "--users", "10", "--days", HUGE, "--out", "{folder}/u.csv"], ["--days"]),
    (["data", "generate", "--users", "10", "--out", "{file}/u.csv"], ["is a file"]),
    (["data", "generate", "--users", "10", "--out", "{folder}"], ["--out"]),
    (["simulate", "x", "--days", HUGE], ["--days", "between"]),
    (["simulate", "x", "--users-per-day", HUGE], ["--users-per-day", "between"]),
    (["simulate", "x", "--start", "0001-01-01"], ["--start"]),
    (["demo", "--users", HUGE], ["--users", "between 100"]),
    (["timeline", "x", "--at", "0001-01-01T00:00:00+14:00"], ["--at", "out of range"]),
    (["timeline", "x", "--at", "9999-12-31T23:59:59-14:00"], ["--at", "out of range"]),
    (["timeline", "x", "--at", "yesterday"], ["--at", "ISO 8601"]),
    (["report", "x", "1.0.0", "--out", "{file}/r.html"], ["is a file"]),
    (["drift", "{numbers}", "{numbers}", "--html", "{file}/r.html"], ["is a file"]),
    (["models", "show", "x", f"{HUGE}.0.0"], []),
]


@pytest.fixture
def bad_files(backend: RegistryEnv, tmp_path: Path) -> dict[str, Path]:
    from core.accounts import bootstrap

    bootstrap.ensure_ready()  # the first admin is made (and announced) before the cases
    folder = tmp_path / "inputs"
    folder.mkdir()
    return _files(folder)


def _substitute(arg: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def _listing(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if not p.name.startswith("registry.db") and p.is_file()}


@pytest.mark.parametrize(("args", "fragments"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_exits_2_with_one_line(
    backend: RegistryEnv,
    bad_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragments: list[str],
) -> None:
    names = {k: str(v) for k, v in bad_files.items()}
    names["file"] = str(bad_files["folder"] / "file")
    argv = [_substitute(a, names) for a in args]
    before = _listing(backend.root)
    status, err = run_main(capsys, *argv)
    assert status == 2, err
    assert_one_line(err, *fragments)
    assert _listing(backend.root) == before  # nothing written, not even a temporary file


# ---------------------------------------------------------------- the environment fails


def run_cli(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_SCHEMA"}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "core", *args],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stderr


UNREACHABLE = [
    ("postgres-refused", "postgresql+psycopg://planwise:pw@127.0.0.1:1/planwise", "refused"),
    ("postgres-no-database", POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_db_19", "does not exist"),
    ("sqlite-folder-impossible", "sqlite:////proc/planwise/registry.db", "cannot be created"),
    ("sqlite-folder-is-a-file", "sqlite:///{root}/file/registry.db", "is a file"),
]


@pytest.mark.parametrize(
    ("url", "fragment"), [u[1:] for u in UNREACHABLE], ids=[u[0] for u in UNREACHABLE]
)
@pytest.mark.parametrize("command", [["init"], ["models", "list"]], ids=["init", "models-list"])
def test_database_unreachable_or_missing_exits_1_with_one_line(
    tmp_path: Path, url: str, fragment: str, command: list[str]
) -> None:
    (tmp_path / "file").write_text("not a folder")
    env = {
        "DATABASE_URL": url.format(root=tmp_path),
        "ARTIFACTS_DIR": str(tmp_path / "models"),
        "DATA_DIR": str(tmp_path / "data"),
    }
    status, err = run_cli(env, *command)
    assert status == 1, err
    assert_one_line(err, fragment)
    assert ":pw@" not in err


def _unshare_available() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"cannot mount a tmpfs: {probe.stderr.strip()}"


def on_small_disk(folder: Path, size: str, fill: bool = False) -> tuple[str, ...]:
    """A command prefix running the process with ``folder`` a fresh tmpfs of ``size`` (only
    that process sees it); ``fill`` fills it first, as a disk that ran out."""
    problem = _unshare_available()
    if problem:
        pytest.skip(problem)
    folder.mkdir(parents=True, exist_ok=True)
    filler = f"; cat /dev/zero > {folder}/filler 2>/dev/null" if fill else ""
    script = f'mount -t tmpfs -o size={size} tmpfs "{folder}"{filler}; exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, "sh")


def test_full_disk_under_the_sqlite_file_exits_1(tmp_path: Path) -> None:
    """The migration runs outside the registry's transactions: its "disk is full" must be
    the same one line as theirs (it was a 40-frame traceback)."""
    disk = tmp_path / "disk"
    env = {
        "DATABASE_URL": f"sqlite:///{disk}/registry.db",
        "ARTIFACTS_DIR": str(tmp_path / "models"),
        "DATA_DIR": str(tmp_path / "data"),
    }
    status, err = run_cli(env, "init", prefix=on_small_disk(disk, "200k"))
    assert status == 1, err
    assert_one_line(err, "database or disk is full")


def test_full_disk_under_a_registry_write_exits_1_and_changes_nothing(
    backend: RegistryEnv, tmp_path: Path
) -> None:
    """Ingest on a full data disk: one line, exit 1, no dataset recorded or left behind."""
    from core.accounts import bootstrap
    from core.data import datasets
    from core.data.generator import generate_users

    bootstrap.ensure_ready()  # the first admin is made (and announced) before
    users = tmp_path / "users.csv"
    generate_users(300, seed=1).to_csv(users, index=False)
    data = Path(backend.env["DATA_DIR"])
    status, err = run_cli(
        backend.env,
        "data",
        "ingest",
        str(users),
        "--name",
        "madrid",
        prefix=on_small_disk(data, "1m", fill=True),
    )
    assert status == 1, err
    assert_one_line(err, "no space left")
    assert datasets.list_datasets() == []


@pytest.mark.parametrize(
    "command",
    [
        ["data", "generate", "--users", "2000", "--out", "{disk}/users.csv"],
        ["data", "generate", "--users", "2000", "--out", "{disk}/users.parquet"],
        ["drift", "{ref}", "{ref}", "--html", "{disk}/drift.html"],
    ],
    ids=["generate-csv", "generate-parquet", "drift-html"],
)
def test_full_output_folder_exits_1_and_leaves_nothing(tmp_path: Path, command: list[str]) -> None:
    from core.data.generator import generate_users

    ref = tmp_path / "ref.csv"
    generate_users(200, seed=1).to_csv(ref, index=False)
    disk = tmp_path / "disk"
    env = {k: v for k, v in make_env("sqlite", tmp_path)[0].items()}
    argv = [a.format(disk=disk, ref=ref) for a in command]
    listing = tmp_path / "listing.txt"
    status, err = run_cli(
        env,
        *argv,
        prefix=(
            *on_small_disk(disk, "64k"),
            "sh",
            "-c",
            f'"$@"; s=$?; ls -A "{disk}" > "{listing}"; exit $s',
            "sh",
        ),
    )
    assert status == 1, err
    assert_one_line(err, "no space left", str(disk))
    assert listing.read_text().split() == []  # no partial file, no temporary file


def test_out_into_a_missing_folder_creates_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "not" / "yet" / "users.parquet"
    assert main(["data", "generate", "--users", "50", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 50
    assert [p.name for p in out.parent.iterdir()] == ["users.parquet"]  # no temporary left
