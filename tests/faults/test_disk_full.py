"""The artifact disk fills up during a training's write (a 512 KiB tmpfs, really full).

Invariant: a clear error that says the disk is full, no version row, no half-written version
folder; once space is freed the next training registers normally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core import training
from core.accounts.auth import SYSTEM
from core.config import reset_settings
from core.db import transaction
from core.db.tables import StageEventRow, VersionRow
from core.errors import CoreError
from tests.conftest import _registry
from tests.fixtures.data import ingest_generated

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("mount") is None, reason="needs root to mount a tmpfs"
    ),
]


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    gen = _registry("sqlite", tmp_path, monkeypatch)
    env = next(gen)
    monkeypatch.setenv("ARTIFACTS_DIR", str(mount / "models"))
    reset_settings()
    try:
        yield mount, env.root
    finally:
        reset_settings()
        subprocess.run(["umount", str(mount)], check=False)
        next(gen, None)


def _fill(mount: Path) -> Path:
    """Leave no free block on the file system."""
    ballast = mount / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return ballast


def test_a_full_disk_fails_the_training_cleanly_and_registers_nothing(small_disk) -> None:
    mount, root = small_disk
    users = ingest_generated(root, n=400)
    ballast = _fill(mount)
    with pytest.raises(CoreError, match="No space left on device"):
        training.train(actor=SYSTEM, family="svd", dataset=users)
    with transaction(write=False) as s:
        assert s.scalars(select(VersionRow)).all() == []
        assert s.scalars(select(StageEventRow)).all() == []
    models = mount / "models"
    versions = [p for p in models.rglob("v*") if p.is_dir() and ".staging" not in p.parts]
    assert versions == []
    assert not any((models / ".staging").iterdir()) if (models / ".staging").exists() else True

    ballast.unlink()
    v = training.train(actor=SYSTEM, family="svd", dataset=users).version
    assert v.version == "1.0.0" and (models / v.artifact_dir / "metadata.json").is_file()
