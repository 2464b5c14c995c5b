"""FastAPI application: ``/recommend``, ``/feedback``, ``/health``, ``/models``, ``/metrics``."""

from __future__ import annotations

import contextlib
import gc
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.config import JsonValue
from starlette.routing import Route

from api import direct, log_writer, render, shadow
from api.keys import (
    REQUIRES_KEY,
    KeyCheck,
    configured_keys,
    document_scheme,
    key_given,
    protected_paths,
)
from api.logger import PredictionLogger
from api.serving import Catalog
from core import monitoring, text
from core.accounts import bootstrap
from core.config import get_settings
from core.data import catalogue
from core.data.categories import CATEGORIES, N_CATEGORIES
from core.errors import CoreError
from core.monitoring import resources
from core.serving import predict

log = logging.getLogger(__name__)

Rating = Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)]


def _storable(value: str) -> str:
    """Refuse (422) a text the log's database cannot store (``core.text``): a NUL or a lone
    surrogate. Over-long texts are refused by each field's ``max_length``."""
    problem = text.unstorable(value)
    if problem is not None:
        raise ValueError(f"the text {problem}")
    return value


# Every text a client sends goes through this: it is stored in the prediction log, or used
# in a query against it.
ClientText = Annotated[str, AfterValidator(_storable)]
# Typed as JSON so the schema example below takes it (a list[int] is not a list[JsonValue]).
EXAMPLE_RATINGS: list[JsonValue] = [
    5,
    0,
    0,
    0,
    0,
    4,
    0,
    0,
    0,
    0,
    0,
    3,
    0,
    0,
    0,
    5,
    0,
    0,
    0,
    0,
    4,
    0,
    0,
    0,
    4,
    0,
    0,
    0,
    0,
]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ratings": EXAMPLE_RATINGS,
                    "lat": 40.4168,
                    "lng": -3.7038,
                    "k": 10,
                    "user_id": "u-42",
                }
            ]
        },
    )

    ratings: Annotated[
        list[Rating],
        Field(
            min_length=N_CATEGORIES,
            max_length=N_CATEGORIES,
            description=f"0–5 per category, in this order: {', '.join(CATEGORIES)}",
        ),
    ]
    mask: Annotated[
        list[bool] | None,
        Field(
            min_length=N_CATEGORIES,
            max_length=N_CATEGORIES,
            description="which ratings the user gave (default: the non-zero ones)",
        ),
    ] = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lng: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    k: Annotated[int, Field(ge=1, le=100)] = 10
    user_id: Annotated[
        ClientText | None, Field(max_length=128, description="keeps the canary split sticky")
    ] = None
    model: Annotated[ClientText | None, Field(max_length=128)] = None


class Place(BaseModel):
    place_id: str
    name: str
    category: str
    score: float
    distance_m: float
    lat: float
    lng: float


class RecommendResponse(BaseModel):
    request_id: str
    model: str
    version: str
    variant: str
    places: list[Place]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Annotated[ClientText, Field(min_length=1, max_length=36)]
    place_id: Annotated[ClientText, Field(min_length=1, max_length=128)]


def create_app(*, start_background: bool = True) -> FastAPI:
    metrics_registry = CollectorRegistry()
    requests_total = Counter(
        "planwise_requests",
        "Recommendation requests",
        ["model", "version", "variant", "status"],
        registry=metrics_registry,
    )
    latency = Histogram(
        "planwise_request_latency_seconds",
        "Time to rank places for a request",
        ["model", "version", "variant"],
        registry=metrics_registry,
        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    )
    errors_total = Counter(
        "planwise_errors",
        "Requests that failed after validation",
        ["model", "version", "variant"],
        registry=metrics_registry,
    )
    invalid_total = Counter(
        "planwise_invalid_requests",
        "Requests refused with 422 (a body that is not valid, or holds a text the log cannot "
        "store: see core.text)",
        ["path"],
        registry=metrics_registry,
    )
    ProcessCollector(registry=metrics_registry)  # CPU seconds, resident memory, open files
    sampler = resources.Sampler("api")
    scorer = shadow.ShadowScorer(registry=metrics_registry)
    catalog = Catalog()
    logger = PredictionLogger(
        registry=metrics_registry, writer=log_writer.for_database(get_settings())
    )
    keys = configured_keys()
    key_bytes = [k.encode() for k in keys]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        report = bootstrap.ensure_ready()
        if report.admin_password:
            # Whichever process starts first on an empty database creates the admin.
            log.warning(
                "created user 'admin' with one-time password: %s (change it at first sign-in)",
                report.admin_password,
            )
        predict.warm_up()  # compiled code is loaded before the first request, not in it
        render.pieces_for(catalogue.load())
        if start_background:
            catalog.start()
            logger.start()
            sampler.start()
            scorer.start()
        else:
            catalog.refresh()
        # What start-up built (catalogue, models, ORM metadata, routes) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it all
        # again every few thousand requests (until shutdown gives it back).
        gc.collect()
        gc.freeze()
        yield
        gc.unfreeze()
        sampler.stop()
        scorer.stop()
        catalog.stop()
        logger.stop()

    app = FastAPI(
        title="Planwise recommendations",
        version="1.0",
        description="Places in Madrid ranked for a user's 29 category ratings, from the "
        "production version of a model (and its canary).",
        lifespan=lifespan,
        # Metrics go to Prometheus (/metrics); FastAPI's OpenTelemetry hooks cost ~0.3 ms a
        # request even with no provider configured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.catalog, app.state.logger, app.state.shadow = catalog, logger, scorer

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each field; the offending input is not echoed (it may not be JSON)."""
        invalid_total.labels(request.url.path if request.url.path in known else "other").inc()
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    def served_model(name: str | None) -> Any:
        default = name or get_settings().api_model
        if default is None:
            default = (
                "autoencoder"
                if "autoencoder" in catalog.models
                else min(catalog.models, default=None)
            )
        served = catalog.models.get(default) if default else None
        if served is None:
            raise HTTPException(
                status_code=404, detail=f"model {default!r} has no production version to serve"
            )
        return served

    meters: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def meters_of(model: str, version: str, variant: str) -> tuple[Any, Any]:
        """The latency and success series of a served version, looked up once: resolving
        ``labels()`` on every request cost as much as building the response."""
        key = (model, version, variant)
        found = meters.get(key)
        if found is None:
            found = meters[key] = (
                latency.labels(model, version, variant),
                requests_total.labels(model, version, variant, "ok"),
            )
        return found

    async def recommend(request: Request) -> Response:
        body = direct.parse(RecommendRequest, await direct.read_body(request))
        served = served_model(body.model)
        loaded, variant = served.pick(body.user_id, random.random())
        version = loaded.version.version
        started = time.perf_counter()
        prefs = np.asarray(body.ratings, dtype=np.float64)
        mask = prefs > 0 if body.mask is None else np.asarray(body.mask, dtype=bool)
        try:
            cat, ranked, predicted = predict.rank_one(
                loaded, prefs, mask, body.lat, body.lng, body.k
            )
        except CoreError as exc:
            errors_total.labels(served.model, version, variant).inc()
            requests_total.labels(served.model, version, variant, "error").inc()
            record = monitoring.PredictionRecord(
                model=served.model,
                version=version,
                variant=variant,
                ratings=body.ratings,
                k=body.k,
                places=[],
                categories=[],
                scores=[],
                latency_ms=(time.perf_counter() - started) * 1000,
                lat=body.lat,
                lng=body.lng,
                error=str(exc),
                user_id=body.user_id,
            )
            logger.add(record)
            raise HTTPException(status_code=500, detail="ranking failed") from exc
        elapsed = time.perf_counter() - started
        record = monitoring.PredictionRecord(
            model=served.model,
            version=version,
            variant=variant,
            ratings=body.ratings,
            k=body.k,
            places=cat.place_ids[ranked.indices].tolist(),
            categories=[CATEGORIES[c] for c in ranked.categories.tolist()],
            scores=ranked.scores.tolist(),
            latency_ms=elapsed * 1000,
            lat=body.lat,
            lng=body.lng,
            predicted=predicted.tolist(),
            user_id=body.user_id,
        )
        logger.add(record)
        rate, candidate = served.shadow_rate, served.canary
        if rate and candidate is not None and variant == "production" and random.random() < rate:
            scorer.submit(
                shadow.Sample(
                    served.model, version, candidate, prefs, mask, body.lat, body.lng,
                    body.k, record.request_id, record.places, record.categories,
                )
            )  # fmt: skip
        observe, count = meters_of(served.model, version, variant)
        observe.observe(elapsed)
        count.inc()
        head = {
            "request_id": record.request_id,
            "model": served.model,
            "version": version,
            "variant": variant,
        }
        # Built by us from typed values: skip re-validating it against the response model.
        content = render.pieces_for(cat).body(head, ranked)
        return Response(content, media_type="application/json")

    app.router.add_api_route(
        "/recommend",
        recommend,
        methods=["POST"],
        response_model=RecommendResponse,
        summary="Recommend",
        openapi_extra=REQUIRES_KEY | direct.body_schema(RecommendRequest),
        route_class_override=direct.DirectRoute,
    )
    # Routes are tried in order and FastAPI puts its documentation's first: the hot path
    # goes ahead of them.
    app.router.routes.insert(0, app.router.routes.pop())

    @app.post("/feedback", status_code=202, openapi_extra=REQUIRES_KEY)
    async def feedback(body: FeedbackRequest) -> dict[str, str]:
        logger.add_feedback(body.request_id, body.place_id)
        return {"status": "accepted"}

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """Liveness for anyone: ``status`` only ("ok", or "degraded" with the process still
        serving). With the API key, the details: what is served, the problems behind a
        "degraded", the registry's and artifacts' errors, the prediction log's backlog.
        Always 200 while the process answers: a degraded log is no reason to restart it
        (its backlog would be lost) or to stop sending it requests (they are still served).
        """
        log_state = logger.state()
        problems = []
        if not catalog.models:
            problems.append("no model has a production version to serve")
        if catalog.errors.get("registry"):
            problems.append("the registry cannot be read")
        if not log_state["draining"]:
            problems.append("the prediction log is not draining")
        status = "degraded" if problems else "ok"
        if not key_given(request.scope, key_bytes):
            return {"status": status}
        return {
            "status": status,
            "problems": problems,
            "serving": {m: s.production.version.version for m, s in catalog.models.items()},
            "errors": catalog.errors,
            "log": log_state,
            "shadow": scorer.state(),
        }

    @app.get("/models", openapi_extra=REQUIRES_KEY)
    async def models() -> list[dict[str, Any]]:
        return [
            {
                "model": s.model,
                "production": s.production.version.version,
                "canary": None if s.canary is None else s.canary.version.version,
                "canary_share": s.canary_share,
                "family": s.production.version.family,
            }
            for s in catalog.models.values()
        ]

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

    known = {r.path for r in app.routes if isinstance(r, Route)}  # every route here is one
    app.add_middleware(KeyCheck, keys=keys, paths=protected_paths(app))
    document_scheme(app)
    return app
