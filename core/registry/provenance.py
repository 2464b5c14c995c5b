"""Provenance of a version: the code revision, Python and library versions that wrote it.

Recorded in every version's ``metadata.json`` so that a loaded model can be traced to what
built it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
from importlib import metadata as importlib_metadata

from core.config import PROJECT_ROOT

DEFAULT_LIBRARIES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "joblib",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "h5py",
)


def library_versions(names: tuple[str, ...] = DEFAULT_LIBRARIES) -> dict[str, str]:
    """Installed versions of the libraries that may have written a version's files."""
    found = {}
    for name in names:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            found[name] = importlib_metadata.version(name)
    return found


@functools.cache
def code_revision() -> str:
    """The code revision that wrote a version: ``CODE_REVISION`` from the environment, else
    the git commit of the checkout (``-dirty`` when tracked files changed), else 'unknown'.

    A container image holds no ``.git``; its build passes the commit in (``ARG
    CODE_REVISION`` in ``deploy/Dockerfile``), so versions trained there are traceable too.
    """
    env = os.environ.get("CODE_REVISION")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        rev = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def python_version() -> str:
    return platform.python_version()
