"""Model families behind one interface (see ``base.Family``).

Families are looked up by name so that TensorFlow is imported only when an autoencoder is
trained; loading any family for inference never imports it (see ``dense_numpy``).
"""

from __future__ import annotations

import importlib

from core.errors import BadInput
from core.families.base import Family

_MODULES = {
    "popularity": "core.families.popularity",
    "svd": "core.families.svd",
    "autoencoder": "core.families.autoencoder",
    "transfer": "core.families.transfer",
    "embeddings": "core.families.embeddings",
}
NAMES = tuple(_MODULES)


def family_class(name: str) -> type[Family]:
    if name not in _MODULES:
        raise BadInput(f"unknown family {name!r}; families are {', '.join(NAMES)}")
    module = importlib.import_module(_MODULES[name])
    cls: type[Family] = module.FAMILY
    return cls
