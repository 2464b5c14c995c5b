"""What the API serves, and switching it without a restart.

A poller reads the registry every ``POLL_SECONDS``; when a model's production or staging
version, or its canary share, changes, the new versions are loaded (files verified first) and
the model's ``Served`` snapshot is replaced by one assignment. A request reads the snapshot
once, so a request in flight finishes on the versions it started with; a version whose files
fail verification is never served and the previous snapshot keeps serving.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field

from core import registry
from core.config import redact
from core.errors import CoreError
from core.registry.entities import ModelInfo
from core.rollout import shadow
from core.serving import predict

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Served:
    model: str
    production: predict.LoadedVersion
    canary: predict.LoadedVersion | None
    canary_share: float
    key: tuple[str | None, str | None, float, float]
    shadow_rate: float = 0.0  # share of production's requests the staging version shadows

    def pick(self, user_id: str | None, fallback: float) -> tuple[predict.LoadedVersion, str]:
        """Sticky split: a user's hash decides, so the same user keeps their variant."""
        if self.canary is None or self.canary_share <= 0:
            return self.production, "production"
        point = fallback if user_id is None else sticky_point(self.model, user_id)
        if point < self.canary_share:
            return self.canary, "canary"
        return self.production, "production"


def sticky_point(model: str, user_id: str) -> float:
    digest = hashlib.sha256(f"{model}\0{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Catalog:
    """The served snapshot of every model with a production version."""

    models: dict[str, Served] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def refresh(self) -> None:
        try:
            infos = registry.list_models()
        except CoreError as exc:
            self.errors["registry"] = redact(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the database may be away; keep serving
            self.errors["registry"] = redact(f"{type(exc).__name__}: {exc}")
            return
        self.errors.pop("registry", None)
        for info in infos:
            self._refresh_model(info)
        for gone in set(self.models) - {i.name for i in infos if i.production}:
            self.models.pop(gone, None)

    def _refresh_model(self, info: ModelInfo) -> None:
        if info.production is None:
            return
        rate = shadow.rate_of(info.settings) if info.staging is not None else 0.0
        key = (info.production, info.staging, float(info.canary_share), rate)
        current = self.models.get(info.name)
        if current is not None and current.key == key:
            return
        try:
            prod = predict.load_version(registry.get_version(info.name, info.production))
            canary = None
            if info.staging is not None:
                canary = predict.load_version(registry.get_version(info.name, info.staging))
        except CoreError as exc:
            self.errors[info.name] = f"kept the previous versions: {exc}"
            log.error("not switching %s: %s", info.name, exc)
            return
        self.models[info.name] = Served(
            info.name, prod, canary, float(info.canary_share), key, rate
        )
        self.errors.pop(info.name, None)
        log.info(
            "serving %s: production %s, canary %s at %.0f%%",
            info.name,
            info.production,
            info.staging,
            100 * info.canary_share,
        )

    def start(self) -> None:
        self.refresh()

        def loop() -> None:
            while not self._stop.wait(POLL_SECONDS):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="registry-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
