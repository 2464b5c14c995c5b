"""``python -m api.manage``: the management API for automation (CI pipelines, scripts).

Its own process, not routes of the recommendation API: that API is the latency-critical
path, replicated and open to client applications with shared keys, while this one writes to
the registry, takes uploads of model files and answers to per-account tokens; it is run once,
reachable from the CI network only, and a slow upload or a burst of CI calls never costs a
recommendation a millisecond.

Every route is a thin call into ``core``: the same permission checks, gates, stage rules and
audit events as the dashboard and the command line (a promotion here writes the same
``stage_events`` row, with the token's account as the actor). Authentication is
``Authorization: Bearer <token>`` with a token issued by ``python -m core tokens issue``; the
token is looked up on every request, so a revoked one is refused at once.
OpenAPI at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from core import registry
from core.accounts import bootstrap, tokens
from core.accounts.auth import Actor, require
from core.config import get_settings
from core.db import DatabaseUnavailable
from core.errors import (
    AlreadyExists,
    ArtifactIntegrityError,
    AuthenticationFailed,
    BadInput,
    ConfigError,
    CoreError,
    GateFailed,
    NotFound,
    PermissionDenied,
    StageConflict,
)
from core.registry.entities import StageChange, StageEvent, VersionInfo
from core.training import uploads

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 512 * 1024**2  # one model file; the registry's artifacts are far smaller
_bearer = HTTPBearer(auto_error=False, description="A token from `python -m core tokens issue`")


# ------------------------------------------------------------------------ schemas


class ModelOut(BaseModel):
    name: str
    family: str
    description: str
    production: str | None
    staging: str | None
    latest: str | None
    version_count: int
    stage_revision: int
    require_audit: bool


class VersionOut(BaseModel):
    model: str
    version: str
    stage: str
    family: str
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    dataset: dict[str, Any] | None
    parent: dict[str, Any] | None
    description: str
    created_by: str
    created_at: str
    files: dict[str, str] = Field(description="SHA-256 of every artifact file")
    metadata: dict[str, Any] | None = Field(
        default=None, description="Lineage and provenance (only when one version is read)"
    )


class GateOut(BaseModel):
    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = {}


class GatesOut(BaseModel):
    model: str
    version: str
    stage: str
    passed: bool = Field(description="Whether every gate passes now")
    gates: list[GateOut]


class EventOut(BaseModel):
    id: int
    model: str
    version: str
    action: str
    from_stage: str | None
    to_stage: str
    actor: str
    reason: str
    gates: list[dict[str, Any]]
    created_at: str


class ChangeOut(BaseModel):
    event: EventOut
    gates: list[dict[str, Any]]
    displaced: EventOut | None


class PromoteIn(BaseModel):
    stage: Literal["staging", "production"]
    reason: str = Field(
        default="", max_length=2000, description="Required: goes into the audit log"
    )
    expected_revision: int | None = Field(
        default=None, description="Refuse (409) if the model's stages changed since this revision"
    )


class RollbackIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Goes into the audit log")
    expected_from: str | None = Field(
        default=None, description="The production version you mean to roll back from"
    )
    to_version: str | None = Field(default=None, description="Default: the rollback target")


class Refusal(BaseModel):
    detail: str
    gates: list[dict[str, Any]] | None = None


class WhoAmI(BaseModel):
    user: str
    role: str


def _version_out(v: VersionInfo, *, full: bool = False) -> VersionOut:
    d = v.as_dict()
    return VersionOut(
        model=v.model,
        version=v.version,
        stage=v.stage,
        family=v.family,
        metrics=v.metrics,
        hyperparameters=v.hyperparameters,
        dataset=d["dataset"],
        parent=d["parent"],
        description=v.description,
        created_by=v.created_by,
        created_at=d["created_at"],
        files=v.files,
        metadata=v.metadata if full else None,
    )


def _event_out(e: StageEvent) -> EventOut:
    return EventOut(**e.as_dict())


def _change_out(c: StageChange) -> ChangeOut:
    return ChangeOut(
        event=_event_out(c.event),
        gates=c.gates,
        displaced=None if c.displaced is None else _event_out(c.displaced),
    )


# ------------------------------------------------------------------------ errors and auth


def _status(exc: CoreError) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, AuthenticationFailed):
        return 401
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AlreadyExists | StageConflict | GateFailed):
        return 409
    if isinstance(exc, ArtifactIntegrityError | BadInput):
        return 422
    return 503 if isinstance(exc, DatabaseUnavailable | ConfigError) else 500


def current_actor(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    """The token's account, with the lower of the token's and the account's role."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "missing Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
        )
    try:
        return tokens.authenticate(credentials.credentials)
    except AuthenticationFailed as exc:
        raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from exc


Acting = Annotated[Actor, Depends(current_actor)]
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "No token, or an invalid, expired or revoked one"},
    403: {"model": Refusal, "description": "The token's role may not do this"},
    404: {"model": Refusal, "description": "Unknown model or version"},
}


@contextlib.contextmanager
def _received(files: list[UploadFile]) -> Iterator[dict[str, Path]]:
    """The uploaded files in a temporary folder, each under its own name and size limit."""
    with tempfile.TemporaryDirectory(prefix="manage-upload-") as tmp:
        out: dict[str, Path] = {}
        for upload in files:
            name = Path(upload.filename or "").name
            if not name or name in out:
                raise BadInput(f"each file needs a distinct name, got {upload.filename!r}")
            path = Path(tmp) / name
            size = 0
            with open(path, "wb") as fh:
                while chunk := upload.file.read(1024 * 1024):
                    size += len(chunk)
                    if size > MAX_UPLOAD_BYTES:
                        raise HTTPException(413, f"{name} is larger than {MAX_UPLOAD_BYTES} bytes")
                    fh.write(chunk)
            out[name] = path
        yield out


# ------------------------------------------------------------------------ the app


def create_app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        report = bootstrap.ensure_ready()
        if report.admin_password:
            log.warning("created user 'admin' with one-time password: %s", report.admin_password)
        yield

    app = FastAPI(
        title="Planwise Monitor management API",
        version="1.0",
        description="Models, versions, gates, promotions, rollbacks and the audit timeline, "
        "for automation. Authenticate with `Authorization: Bearer <token>` (a per-account "
        "token from `python -m core tokens issue`); the token acts with the lower of its own "
        "and its account's role. Every change goes through the same rules and writes the same "
        "audit events as the dashboard.",
        lifespan=lifespan,
    )

    @app.exception_handler(CoreError)
    async def core_error(request: Request, exc: CoreError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, GateFailed):
            body["gates"] = [g.as_dict() for g in exc.gates]
        return JSONResponse(body, status_code=_status(exc))

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Unauthenticated liveness probe."""
        return {"status": "ok"}

    @app.get("/whoami", response_model=WhoAmI, responses=REFUSALS, tags=["service"])
    def whoami(actor: Acting) -> WhoAmI:
        return WhoAmI(user=actor.username, role=actor.role)

    @app.get("/models", response_model=list[ModelOut], responses=REFUSALS, tags=["registry"])
    def models(actor: Acting) -> list[ModelOut]:
        require(actor, "read", "list models")
        return [
            ModelOut(
                name=m.name,
                family=m.family,
                description=m.description,
                production=m.production,
                staging=m.staging,
                latest=m.latest,
                version_count=m.version_count,
                stage_revision=m.stage_revision,
                require_audit=m.require_audit,
            )
            for m in registry.list_models()
        ]

    @app.get(
        "/models/{model}/versions",
        response_model=list[VersionOut],
        responses=REFUSALS,
        tags=["registry"],
    )
    def versions(
        model: str,
        actor: Acting,
        stage: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[VersionOut]:
        """Newest first."""
        require(actor, "read", "list versions")
        registry.get_model(model)  # 404 for an unknown model, not an empty list
        found = registry.list_versions(model=model, stage=stage, page=page, page_size=page_size)
        return [_version_out(v) for v in found.items]

    @app.get(
        "/models/{model}/versions/{version}",
        response_model=VersionOut,
        responses=REFUSALS,
        tags=["registry"],
    )
    def version(model: str, version: str, actor: Acting) -> VersionOut:
        require(actor, "read", "read versions")
        return _version_out(registry.get_version(model, version), full=True)

    @app.post(
        "/models/{model}/versions",
        response_model=VersionOut,
        status_code=201,
        responses={
            **REFUSALS,
            413: {"model": Refusal, "description": "A file is too large"},
            422: {"model": Refusal, "description": "The files are not a loadable model"},
        },
        tags=["registry"],
    )
    def register(
        model: str,
        actor: Acting,
        family: Annotated[str, Form(description="autoencoder, svd, embeddings or popularity")],
        files: Annotated[
            list[UploadFile],
            File(
                description="The model files: model.keras (or .h5) + scaler.save for an "
                "autoencoder; model.npz + params.json for svd and embeddings; model.json for "
                "popularity"
            ),
        ],
        dataset: Annotated[
            str | None, Form(description="Evaluate on this registered dataset (NAME[@VERSION])")
        ] = None,
        description: Annotated[str, Form(max_length=2000)] = "",
    ) -> VersionOut:
        """Register a candidate version from uploaded files, checked as the family's model
        (the rules of ``import-legacy`` for an autoencoder); evaluated on ``dataset`` if given."""
        require(actor, "operate", "register model versions")
        with _received(files) as received:
            v = uploads.register_files(
                actor=actor,
                model=model,
                family=family,
                files=received,
                dataset=dataset or None,
                description=description,
                metadata={"registered_through": "management API"},
            )
        return _version_out(v, full=True)

    @app.get(
        "/models/{model}/versions/{version}/gates",
        response_model=GatesOut,
        responses=REFUSALS,
        tags=["stages"],
    )
    def gates(
        model: str, version: str, actor: Acting, stage: Literal["staging", "production"]
    ) -> GatesOut:
        """The gates a promotion by this token's account would face now, with their figures."""
        require(actor, "read", "read gates")
        found = registry.preview_gates(model, version, stage, actor=actor)
        return GatesOut(
            model=model,
            version=version,
            stage=stage,
            passed=all(g["passed"] for g in found),
            gates=[GateOut(**g) for g in found],
        )

    @app.post(
        "/models/{model}/versions/{version}/promote",
        response_model=ChangeOut,
        responses={
            **REFUSALS,
            409: {"model": Refusal, "description": "A gate failed (see gates) or stages moved"},
        },
        tags=["stages"],
    )
    def promote(model: str, version: str, body: PromoteIn, actor: Acting) -> ChangeOut:
        """Promote through the gates, as the dashboard's Deploy page does; 409 with the gates'
        figures when one refuses."""
        change = registry.promote(
            actor=actor,
            model=model,
            version=version,
            stage=body.stage,
            reason=body.reason,
            expected_revision=body.expected_revision,
        )
        return _change_out(change)

    @app.post(
        "/models/{model}/rollback",
        response_model=ChangeOut,
        responses={**REFUSALS, 409: {"model": Refusal, "description": "Production moved"}},
        tags=["stages"],
    )
    def rollback(model: str, body: RollbackIn, actor: Acting) -> ChangeOut:
        """Return production to the rollback target (or ``to_version``), as the dashboard
        does; with ``expected_from``, refused if production is no longer that version."""
        change = registry.rollback(
            actor=actor,
            model=model,
            reason=body.reason,
            expected_from=body.expected_from,
            to_version=body.to_version,
        )
        return _change_out(change)

    @app.get(
        "/models/{model}/timeline",
        response_model=list[EventOut],
        responses=REFUSALS,
        tags=["stages"],
    )
    def timeline(
        model: str, actor: Acting, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> list[EventOut]:
        """Stage events, newest first: registrations, promotions, rollbacks, archivals."""
        require(actor, "read", "read the timeline")
        registry.get_model(model)
        return [_event_out(e) for e in registry.timeline(model, limit=limit)]

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m api.manage", description="The management API for automation."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    try:
        get_settings()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import uvicorn

    uvicorn.run(
        "api.manage:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
