"""Client API keys: where they come from, and the check in front of the protected routes.

The check is a plain ASGI middleware rather than a FastAPI ``Security`` dependency: resolving
that dependency cost about 100 µs of CPU a request, more than ranking the catalogue, and the
recommendation path is the service's reason to exist. A route asks for a key by declaring
``openapi_extra=REQUIRES_KEY`` (merged with any other extra), which also shows the
requirement in the OpenAPI schema.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from core.config import get_settings

log = logging.getLogger(__name__)

HEADER = "X-API-Key"
SCHEME = "APIKeyHeader"
REQUIRES_KEY: dict[str, Any] = {"security": [{SCHEME: []}]}


def configured_keys() -> list[str]:
    """Keys from ``API_KEYS``; without it, a key generated once and kept in the data folder."""
    configured = get_settings().api_keys
    if configured:
        keys = [k.strip() for k in configured.split(",") if k.strip()]
        if keys:
            return keys
    path: Path = get_settings().data_root / "api-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
        log.warning("no API_KEYS set: generated a client key in %s", path)
    return [path.read_text().strip()]


def protected_paths(app: FastAPI) -> frozenset[str]:
    return frozenset(
        r.path
        for r in app.routes
        if isinstance(r, APIRoute)
        and (r.openapi_extra or {}).get("security") == REQUIRES_KEY["security"]
    )


def document_scheme(app: FastAPI) -> None:
    """Declare the header scheme in the schema that the routes' ``security`` refers to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = build()  # FastAPI keeps it in app.openapi_schema: built once
            schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = {
                "type": "apiKey",
                "in": "header",
                "name": HEADER,
            }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def key_given(scope: Scope, keys: list[bytes]) -> bool:
    """Whether the request carries one of ``keys``; each is compared in constant time."""
    header = HEADER.lower().encode()
    given = next((v for k, v in scope["headers"] if k == header), b"")
    return any([hmac.compare_digest(given, k) for k in keys])


class KeyCheck:
    """401 for a protected path without one of the keys; every key is compared in constant
    time, whichever matches."""

    def __init__(self, app: ASGIApp, *, keys: Iterable[str], paths: frozenset[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]
        self.paths = paths
        self.header = HEADER.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            given = next((v for k, v in scope["headers"] if k == self.header), b"")
            if not any([hmac.compare_digest(given, k) for k in self.keys]):
                refused = JSONResponse({"detail": f"missing or wrong {HEADER}"}, status_code=401)
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)
