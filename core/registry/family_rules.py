"""The model families and the one way a version may come from another family: the rules the
registry, training, uploads, schedules and pages all apply.

They live here, at the bottom of everything that names a family, because the registry (below
:mod:`core.families` in the layering) checks them too; :mod:`core.families` loads each family
from this list and re-exports the rules for the packages above it.

A ``transfer`` version fine-tunes an ``autoencoder`` (or an earlier ``transfer``) version: it is
the only family trained from a parent, and the only family a model may move to from another
(an autoencoder model gets transfer versions).
"""

from __future__ import annotations

from core.errors import BadInput

FAMILIES = ("autoencoder", "svd", "transfer", "embeddings", "popularity")

_FINE_TUNES_FROM: dict[str, tuple[str, ...]] = {"transfer": ("autoencoder", "transfer")}


def fine_tunes_from(family: str) -> tuple[str, ...]:
    """The families a ``family`` version is trained from (empty: it needs no parent)."""
    return _FINE_TUNES_FROM.get(family, ())


def parent_family_ok(child: str, parent: str) -> bool:
    """Whether a ``child`` version may fine-tune a ``parent`` version."""
    return parent in fine_tunes_from(child)


def check_parent(family: str, parent_label: str, parent_family: str) -> None:
    """Refuse a parent a ``family`` version cannot be trained from: recording it would give the
    version a lineage it does not have."""
    if not fine_tunes_from(family):
        raise BadInput(f"the {family} family is not trained from a parent; drop --parent")
    if not parent_family_ok(family, parent_family):
        raise BadInput(
            f"parent {parent_label} is a {parent_family} version; a {family} version "
            f"fine-tunes {' or '.join(fine_tunes_from(family))} versions"
        )


def may_register(model_family: str, family: str) -> bool:
    """Whether a model of ``model_family`` takes a ``family`` version: its own family, or one
    that fine-tunes it."""
    return family == model_family or parent_family_ok(family, model_family)
