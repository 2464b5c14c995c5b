"""The packages of ``core`` import only packages below them (docs/architecture.md), so there is
no import cycle between packages and a newcomer can read them bottom to top."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

CORE = PROJECT_ROOT / "core"
FOUNDATION = {"errors", "config", "text", "inputs"}
# Bottom to top, as docs/architecture.md lists them.
LAYERS = [
    "db",
    "accounts",
    "metrics",
    "registry",
    "data",
    "families",
    "serving",
    "training",
    "monitoring",
    "review",
    "retraining",
    "rollout",
    "demo",
    "cli",
]


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``core`` module ``path`` imports, at module level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "core":
                found += [(node.lineno, f"core.{a.name}") for a in node.names]
            elif node.module.startswith("core."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("core.")]
    return found


def test_every_package_is_listed_in_the_architecture() -> None:
    packages = {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS)
    text = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for package in LAYERS:
        assert f"`{package}/`" in text, package


def test_no_package_imports_one_above_it() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(PROJECT_ROOT)
        if "migrations" in rel.parts:
            continue
        own = rel.parts[1] if len(rel.parts) > 2 else None
        for line, module in _imports(path):
            target = _package_of(module)
            if target in FOUNDATION or target == "core" or target == own:
                continue
            if own is None:  # a foundation module: the test below
                continue
            if rank[target] > rank[own]:
                upward.append(f"{rel}:{line} ({own}) imports {module} ({target})")
    assert not upward, "\n".join(upward)


def test_foundation_modules_import_no_package_but_the_database() -> None:
    wrong = []
    for name in sorted(FOUNDATION):
        for line, module in _imports(CORE / f"{name}.py"):
            target = _package_of(module)
            if target not in FOUNDATION and target != "db":
                wrong.append(f"core/{name}.py:{line} imports {module}")
    assert not wrong, "\n".join(wrong)
