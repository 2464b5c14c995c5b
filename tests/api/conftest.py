"""What the API tests share: the original Planwise model, imported and in production."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core import registry
from core.accounts.auth import SYSTEM
from core.registry.entities import VersionInfo
from core.training import legacy
from tests.conftest import LEGACY_MODEL


@pytest.fixture
def legacy_in_production() -> Callable[[], VersionInfo]:
    """A factory: imports the legacy autoencoder as ``autoencoder`` 1.0.0 and promotes it to
    production, in the registry the test set up (call it after ``backend``/``sqlite_backend``,
    which a fixture that does not know which of them the test uses cannot order itself)."""

    def serve() -> VersionInfo:
        v = legacy.import_legacy(
            actor=SYSTEM,
            model_file=LEGACY_MODEL / "autoencoder.h5",
            scaler_file=LEGACY_MODEL / "scaler.save",
            name="autoencoder",
        )
        registry.promote(
            actor=SYSTEM,
            model="autoencoder",
            version=v.version,
            stage="production",
            reason="test promotion",
        )
        return v

    return serve
