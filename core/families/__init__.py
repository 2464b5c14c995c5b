"""Model families behind one interface (see ``base.Family``).

Families are looked up by name so that TensorFlow is imported only when an autoencoder is
trained; loading any family for inference never imports it (see ``dense_numpy``). The names,
and which family fine-tunes which, are :mod:`core.registry.family_rules` (the registry, below
this package, checks them too); each name is the module ``core.families.<name>``.
"""

from __future__ import annotations

import importlib

from core.errors import BadInput
from core.families.base import Family
from core.registry.family_rules import (
    FAMILIES,
    check_parent,
    fine_tunes_from,
    may_register,
    parent_family_ok,
)

__all__ = [
    "FAMILIES",
    "check_parent",
    "family_class",
    "fine_tunes_from",
    "may_register",
    "parent_family_ok",
]


def family_class(name: str) -> type[Family]:
    if name not in FAMILIES:
        raise BadInput(f"unknown family {name!r}; families are {', '.join(FAMILIES)}")
    module = importlib.import_module(f"{__name__}.{name}")
    cls: type[Family] = module.FAMILY
    return cls
