"""Rows as plain objects: the one way a table's row becomes a value callers may keep.

A query returns ORM rows bound to a session; pages, the API and the CLI get frozen values
instead, so nothing they hold can lazy-load or write back. The copy is pydantic's
``from_attributes`` validation (fields matched by name, types checked), never field-by-field
code, so a column added to a table and to its value class needs no copying code anywhere.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Plain(BaseModel):
    """Base of the value classes read from rows: frozen, built from a row or from keywords.

    ``Info.of(row)`` reads a row (or any object with the attributes); ``as_dict()`` gives the
    JSON-ready mapping the CLI's ``--json`` and the API return, datetimes in ISO 8601 with
    their offset (``+00:00``), as :func:`datetime.datetime.isoformat` writes them.
    """

    model_config = ConfigDict(from_attributes=True, frozen=True, arbitrary_types_allowed=True)

    @classmethod
    def of(cls, row: object, **extra: Any) -> Self:
        """``row``'s fields as a value; ``extra`` gives the fields the row has not (derived)."""
        if not extra:
            return cls.model_validate(row)
        data = {
            name: getattr(row, name)
            for name in cls.model_fields
            if name not in extra and hasattr(row, name)
        }
        return cls.model_validate({**data, **extra})

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (validated, unlike ``model_copy``)."""
        return type(self).model_validate({**self.__dict__, **changes})

    def as_dict(self) -> dict[str, Any]:
        return {name: _jsonable(value) for name, value in self.__dict__.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Plain):
        return value.as_dict()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
