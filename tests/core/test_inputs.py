"""Checks of typed input shared by the interfaces (core.inputs)."""

from __future__ import annotations

import ast

import pytest

from core.errors import BadInput
from core.inputs import parse_key_values
from tests.conftest import PROJECT_ROOT


def test_key_values_are_stripped_text_and_the_last_key_wins() -> None:
    items = [" epochs = 20", "lr=0.1", "note=a=b", "empty=", "lr=0.2"]
    assert parse_key_values(items) == {"epochs": "20", "lr": "0.2", "note": "a=b", "empty": ""}
    assert parse_key_values([]) == {}


@pytest.mark.parametrize("item", ["shrinkage", "=3", "  = 3", ""])
def test_a_bad_item_is_named_in_one_line(item: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_key_values(["rank=5", item])
    message = str(caught.value)
    assert message == f"a hyperparameter must be written KEY=VALUE, got {item.strip()!r}"
    assert "\n" not in message


def test_a_long_bad_item_is_shortened() -> None:
    with pytest.raises(BadInput, match=r"must be written KEY=VALUE, got 'xxx.*characters\)$"):
        parse_key_values(["x" * 500])


def test_no_interface_parses_key_values_itself() -> None:
    """The command line and the pages call parse_key_values: no other ``.partition("=")``."""
    found = []
    for top in ("core", "api", "jobs", "dashboard"):
        for path in (PROJECT_ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "partition"
                    and [getattr(a, "value", None) for a in node.args] == ["="]
                ):
                    found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert [f.split(":")[0] for f in found] == ["core/inputs.py"]
