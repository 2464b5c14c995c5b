"""Semantic version numbers of model versions (``MAJOR.MINOR.PATCH``)."""

from __future__ import annotations

import re
from typing import Literal

from core.errors import BadInput

Bump = Literal["major", "minor", "patch"]
_SEMVER = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
FIRST = (1, 0, 0)


def parse(version: str) -> tuple[int, int, int]:
    match = _SEMVER.match(version.strip().removeprefix("v"))
    if not match:
        raise BadInput(f"invalid version {version!r}: expected MAJOR.MINOR.PATCH, e.g. 1.4.0")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def bump(latest: tuple[int, int, int] | None, how: Bump = "minor") -> tuple[int, int, int]:
    if latest is None:
        return FIRST
    major, minor, patch = latest
    if how == "major":
        return major + 1, 0, 0
    if how == "minor":
        return major, minor + 1, 0
    if how == "patch":
        return major, minor, patch + 1
    raise BadInput(f"invalid bump {how!r}: use major, minor or patch")


def fmt(parts: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in parts)
