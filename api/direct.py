"""Routes that take the raw request: for the recommendation path, where FastAPI's per-request
machinery cost as much as the recommendation.

A :class:`DirectRoute` is still an ``APIRoute``: FastAPI routes it, documents it (response
model, ``openapi_extra``) and runs the app's middleware and exception handlers around it. Its
endpoint takes the ``Request`` and returns a ``Response``, so FastAPI skips what such an
endpoint never needs: dependency solving (which parses query string, headers and cookies on
every request), its body reading, and response serialisation (FastAPI's documented
custom-``APIRoute`` hook, ``get_route_handler``), and the per-request wrapper that serves
dependencies (see :func:`respond`).

FastAPI would read a body model by decoding the JSON with the standard library, parsing the
Content-Type header through ``email.message`` and then validating the decoded objects;
:func:`parse` gets the same model, and the same 422 naming each field (``loc`` starting with
``"body"``), from pydantic-core's ``model_validate_json`` in one step. :func:`body_schema`
documents the body in the OpenAPI schema as FastAPI would have.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

M = TypeVar("M", bound=BaseModel)


class DirectRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if kwargs.get("max_body_size") is None:  # else keep FastAPI's limit around it
            self.app = respond(self.get_route_handler())

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint  # type: ignore[no-any-return]


def respond(endpoint: Callable[[Request], Coroutine[Any, Any, Response]]) -> ASGIApp:
    """The route's ASGI app: the endpoint's response, sent. FastAPI's own wrapper adds, per
    request, two exit stacks for dependencies with ``yield`` (this endpoint has none) and a
    second pass of the exception handlers that the app's ``ExceptionMiddleware`` applies
    around every route anyway."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


async def read_body(request: Request) -> bytes:
    """The whole body, as ``Request.body`` reads it (and ``ClientDisconnect`` if the client
    leaves), without its async generator: a JSON body nearly always comes in one message."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse(model: type[M], raw: bytes) -> M:
    """The body as ``model``; a RequestValidationError (422) naming the fields at fault."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [
            {"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(errors) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the route's required JSON body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
