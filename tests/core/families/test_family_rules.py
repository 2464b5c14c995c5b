"""The family names and the fine-tuning rule (core.registry.family_rules, re-exported by
core.families) are written once, and every interface applies them from there."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from core import families, registry
from core.errors import BadInput
from core.registry import family_rules
from tests.conftest import PROJECT_ROOT


def test_every_name_loads_its_family_without_tensorflow() -> None:
    code = (
        "import sys\n"
        "from core.families import FAMILIES, family_class\n"
        "assert all(family_class(n).name == n for n in FAMILIES), FAMILIES\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_one_list_of_families() -> None:
    assert families.FAMILIES is family_rules.FAMILIES is registry.FAMILIES
    with pytest.raises(BadInput, match="unknown family 'nope'; families are"):
        families.family_class("nope")


def test_a_transfer_version_fine_tunes_an_autoencoder_or_transfer_parent() -> None:
    assert families.fine_tunes_from("transfer") == ("autoencoder", "transfer")
    for name in set(families.FAMILIES) - {"transfer"}:
        assert families.fine_tunes_from(name) == ()
    allowed = {
        (child, parent)
        for child in families.FAMILIES
        for parent in families.FAMILIES
        if families.parent_family_ok(child, parent)
    }
    assert allowed == {("transfer", "autoencoder"), ("transfer", "transfer")}


def test_a_model_keeps_its_family_except_to_be_fine_tuned() -> None:
    changes = {
        (model, version)
        for model in families.FAMILIES
        for version in families.FAMILIES
        if model != version and families.may_register(model, version)
    }
    assert changes == {("autoencoder", "transfer")}


def _sources() -> list[tuple[str, ast.AST]]:
    out = []
    for top in ("core", "api", "jobs", "dashboard"):
        for path in sorted((PROJECT_ROOT / top).rglob("*.py")):
            rel = str(path.relative_to(PROJECT_ROOT))
            if rel != "core/registry/family_rules.py":
                out.append((rel, ast.parse(path.read_text(encoding="utf-8"))))
    return out


def test_no_interface_writes_the_rule_or_the_list_again() -> None:
    """No literal collection of several family names, and no comparison of a family with
    ``"transfer"``, outside the rule's module: the interfaces ask the rule."""
    found = []
    names = set(family_rules.FAMILIES)
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                strings = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(strings & names) >= 2:
                    found.append(f"{rel}:{node.lineno} {sorted(strings & names)}")
            if isinstance(node, ast.Compare):
                for side in (node.left, *node.comparators):
                    if isinstance(side, ast.Constant) and side.value == "transfer":
                        found.append(f"{rel}:{node.lineno} compares with 'transfer'")
    assert found == []
