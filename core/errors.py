"""Typed errors under one base class.

Interfaces catch :class:`CoreError` and show its message. :class:`BadInput` and its subclasses
mean the caller asked for something wrong (the CLI exits 2); any other :class:`CoreError` is a
failure of the system (exit 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class CoreError(Exception):
    """Base of every error the core raises on purpose."""


class ConfigError(CoreError):
    """The environment holds an unusable setting."""


class BadInput(CoreError):
    """The request or the file is wrong; nothing was changed."""


class NotFound(BadInput):
    """An unknown model, version, dataset or user."""


class AlreadyExists(BadInput):
    """A name or version that must be unique is taken."""


class PermissionDenied(BadInput):
    """The actor's role does not allow the operation."""


class AuthenticationFailed(BadInput):
    """Wrong user name or password (deliberately not saying which)."""


class StageConflict(BadInput):
    """The registry changed since the caller looked; the change was not applied."""


class ArtifactIntegrityError(BadInput):
    """An artifact file is missing or its SHA-256 differs from the registry's record."""


@dataclass(frozen=True)
class GateResult:
    """One promotion gate: its verdict and the figures behind it."""

    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "detail": self.detail,
            "figures": self.figures,
        }


class GateFailed(BadInput):
    """A promotion was refused by one or more gates."""

    def __init__(self, message: str, gates: list[GateResult]):
        super().__init__(message)
        self.gates = gates


@dataclass(frozen=True)
class Problem:
    """One validation finding: what is wrong, where, and a few examples."""

    column: str | None
    kind: str
    message: str
    rows: tuple[int, ...] = ()
    examples: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "message": self.message,
            "rows": list(self.rows),
            "examples": list(self.examples),
        }


class ValidationFailed(BadInput):
    """A file failed validation; :attr:`problems` names the columns and rows at fault."""

    def __init__(self, subject: str, problems: list[Problem]):
        self.subject = subject
        self.problems = problems
        lines = [f"{subject} failed validation ({len(problems)} problem(s)):"]
        lines += [f"  - {p.message}" for p in problems]
        super().__init__("\n".join(lines))


class StorageFull(CoreError):
    """The disk (or quota) ran out while writing; what was being written was discarded."""
