"""pyproject.toml against the pinned requirements files: the files stay the lock that
scripts/install.sh and the images install, so the extras that repeat their pins must not drift,
and an installed (non-editable) copy must carry the migrations Alembic reads as files."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def _pins(name: str) -> list[str]:
    """The requirement lines of one file, without comments and `-r` includes."""
    lines = (PROJECT_ROOT / name).read_text().splitlines()
    pins = [line.split("#", 1)[0].strip() for line in lines]
    return [pin for pin in pins if pin and not pin.startswith("-r")]


def _project() -> dict:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def test_the_dependencies_are_the_serving_pins() -> None:
    config = _project()
    assert "dependencies" in config["project"]["dynamic"]
    files = config["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    assert files == ["requirements-serving.txt"]


def test_the_extras_repeat_the_training_and_dev_pins() -> None:
    extras = _project()["project"]["optional-dependencies"]
    assert extras["training"] == _pins("requirements.txt")
    dev = [pin for pin in extras["dev"] if not pin.startswith("planwise-monitor")]
    assert dev == _pins("requirements-dev.txt")
    assert "planwise-monitor[training]" in extras["dev"]  # requirements-dev.txt includes it


def test_package_data_covers_every_migration_file() -> None:
    globs = _project()["tool"]["setuptools"]["package-data"]["core"]
    core = PROJECT_ROOT / "core"
    files = [
        f
        for f in (core / "db" / "migrations").rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
    ]
    assert files
    for f in files:
        assert any(f.relative_to(core).match(g) for g in globs), f


def test_the_license_is_mit() -> None:
    config = _project()["project"]
    assert config["license"] == "MIT" and config["license-files"] == ["LICENSE"]
    text = (PROJECT_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Planwise Monitor contributors" in text


def test_the_packages_import_from_any_folder(tmp_path: Path) -> None:
    """The project is installed, not found through the working folder or PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import core, api, jobs, dashboard; print(core.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == PROJECT_ROOT / "core" / "__init__.py"
