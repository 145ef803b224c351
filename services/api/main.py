"""The REST API application: `create_app()`, its lifespan, middleware, routers and OpenAPI document.

Run it with `movierec serve api`, or `uvicorn --factory services.api.main:create_app`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from redis import Redis
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from db.session import create_db_engine, create_session_factory
from services.api.admin.endpoints import router as admin_router
from services.api.auth.endpoints import router as api_keys_router
from services.api.auth.ratelimit import RateLimiter
from services.api.auth.service import KeyCache, key_prefix
from services.api.auth.service import api_key as api_key_service
from services.api.background import BackgroundWorkers, refresh_experiments, sync_live_model
from services.api.errors import PROBLEM_MEDIA_TYPE, MovierecError, register_error_handlers
from services.api.events.endpoints import router as events_router
from services.api.experiments.endpoints import router as experiments_router
from services.api.experiments.service import ExposureLog, RunningExperiments
from services.api.health.endpoints import router as health_router
from services.api.metrics import Metrics
from services.api.middleware import BodyLimitMiddleware, MetricsMiddleware, RequestContextMiddleware
from services.api.movies.endpoints import router as movies_router
from services.api.movies.service import TitleSearch
from services.api.recommendations.endpoints import router as recommendations_router
from services.api.recommendations.engine import ModelRegistry, freeze_heap
from services.api.recommendations.fast_path import UserListFastPath
from services.api.recommendations.service import InvalidationQueue
from services.api.redis_guard import RedisGuard, create_async_redis_client, create_redis_client
from services.api.state import AppState
from services.api.users.endpoints import router as users_router
from services.embedded import resolve_urls
from services.settings import Settings, get_settings

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"
DESCRIPTION = """
Movie recommendations for client apps: per-user top-k lists served from a cache, with sticky A/B
experiments, plus the catalog, ratings, events and the admin operations around them.

**Authentication**: send an API key in the `X-API-Key` header. Scopes: `read` (recommendations,
catalog), `write` (users, ratings, events), `admin` (experiments, retraining, models, keys; implies
the others).

**Errors** are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`) with `type`, `title`, `status`, `detail` and `instance`;
validation errors add `errors`, one entry per invalid field.

**Rate limits**: each key may make `API_RATE_LIMIT_PER_MINUTE` requests per minute (600 by
default). Responses carry `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`;
over the limit the API answers 429 with `Retry-After`.

**Retries**: `POST` endpoints that write accept an `Idempotency-Key` header; a retry with the same
key and body gets the first response again (with `Idempotent-Replayed: true`).
"""

TAGS = [
    {"name": "recommendations", "description": "Top-k lists, similar movies, predicted ratings."},
    {"name": "movies", "description": "The catalog."},
    {"name": "users", "description": "Users and their ratings."},
    {"name": "events", "description": "What users did with their recommendations."},
    {"name": "experiments", "description": "A/B experiments and users' assignments (admin)."},
    {"name": "admin", "description": "Retraining, models and API keys (admin)."},
    {"name": "health", "description": "Liveness, readiness and metrics (no key needed)."},
]


def _build_state(
    settings: Settings, metrics: Metrics, session_factory: sessionmaker[Session] | None
) -> AppState:
    urls = resolve_urls(settings)
    engine = None
    if session_factory is None:
        engine = create_db_engine(urls.database_url, "api", pool_size=settings.DB_POOL_SIZE)
        session_factory = create_session_factory(engine)
    timeout = settings.API_REDIS_TIMEOUT.total_seconds()
    guard = RedisGuard(
        create_redis_client(urls.redis_url, timeout=timeout),
        create_async_redis_client(urls.redis_url, timeout=timeout),
        retry_after=settings.API_REDIS_RETRY_AFTER.total_seconds(),
        on_state_change=lambda up: metrics.redis_up.set(1 if up else 0),
    )
    models = ModelRegistry(
        settings, on_live_change=lambda model: metrics.set_model(model.version, model.loaded_at)
    )
    return AppState(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        redis=guard,
        metrics=metrics,
        models=models,
        experiments=RunningExperiments(),
        exposures=ExposureLog(guard, session_factory, metrics),
        keys=KeyCache(settings.API_AUTH_CACHE_TTL.total_seconds()),
        limiter=RateLimiter(guard, settings.API_RATE_LIMIT_PER_MINUTE),
        invalidations=InvalidationQueue(),
        titles=TitleSearch(),
        redis_url=urls.redis_url,
        compute_slots=asyncio.Semaphore(settings.API_COMPUTE_CONCURRENCY),
    )


def _ensure_admin_key(state: AppState) -> None:
    """Create the first admin key if there is none (logged once, never again)."""
    settings = state.settings
    try:
        with state.session_factory.begin() as session:
            created = api_key_service.ensure_admin_key(
                session, data_dir=settings.DATA_DIR, bootstrap_key=settings.BOOTSTRAP_API_KEY
            )
    except DBAPIError as exc:
        logger.error("cannot check for an admin API key (database unreachable: %s)", exc.orig)
        return
    except MovierecError as exc:
        logger.error("cannot create the admin API key: %s", exc.detail)
        return
    if created is None:
        return
    if settings.BOOTSTRAP_API_KEY:
        logger.warning("created the admin API key %s... from BOOTSTRAP_API_KEY", key_prefix(created.secret))
    else:
        logger.warning(
            "created the admin API key %s (shown once; also in %s)",
            created.secret,
            (settings.DATA_DIR / "admin-api-key").resolve(),
        )


def _startup(state: AppState) -> None:
    _ensure_admin_key(state)
    if not sync_live_model(state) and state.models.live is None:
        logger.warning("no live model yet: recommendations answer 503 until the worker promotes one")
    refresh_experiments(state)
    try:
        with state.session_factory() as session:
            state.titles.index(session)  # the catalog's title index, before the first search
    except DBAPIError as exc:
        logger.warning("cannot index the catalog's titles yet: %s", exc.orig)
    freeze_heap()


def _shutdown(state: AppState) -> None:
    state.exposures.flush()
    state.redis.close()
    if state.engine is not None:
        state.engine.dispose()


def _problem_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with every error response as `application/problem+json`."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    problem_ref = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:  # a body that is not JSON at all, or too large
                responses = operation.setdefault("responses", {})
                responses.setdefault(
                    "400",
                    {
                        "description": "The body could not be read.",
                        "content": {PROBLEM_MEDIA_TYPE: problem_ref},
                    },
                )
                responses.setdefault(
                    "413",
                    {
                        "description": "The request body is too large.",
                        "content": {PROBLEM_MEDIA_TYPE: problem_ref},
                    },
                )
            for status, response in operation.get("responses", {}).items():
                content = response.get("content")
                if not status.isdigit() or int(status) < 400 or not content:
                    continue
                media = content.pop("application/json", None) or content.get(PROBLEM_MEDIA_TYPE, {})
                if status == "422":
                    media = {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}
                response["content"] = {PROBLEM_MEDIA_TYPE: media}
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema


def create_app(
    settings: Settings | None = None, *, session_factory: sessionmaker[Session] | None = None
) -> FastAPI:
    """The API application.

    Args:
        settings: Defaults to the process settings (environment and `.env`).
        session_factory: Sessions to use instead of an engine built from `DATABASE_URL` (tests bind
            it to a connection whose work is rolled back).
    """
    settings = settings or get_settings()
    # Requests are scored concurrently on the threadpool: one BLAS thread each, or every request
    # spawns a full BLAS pool and they fight over the cores (throughput fell as connections grew).
    threadpool_limits(limits=1)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(_build_state, settings, metrics, session_factory)
        app.state.api = state
        await run_in_threadpool(_startup, state)
        workers = None
        if settings.API_BACKGROUND_TASKS:
            pubsub_client = Redis.from_url(
                state.redis_url, socket_connect_timeout=1, socket_timeout=5, health_check_interval=30
            )
            workers = BackgroundWorkers(state, pubsub_client)
            workers.start()
        try:
            yield
        finally:
            if workers is not None:
                await run_in_threadpool(workers.stop)
            await run_in_threadpool(_shutdown, state)
            await state.redis.aclose()

    app = FastAPI(
        title="movierec API",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
    )
    register_error_handlers(app)
    # Added innermost first: metrics see every response, including CORS preflights and 500s.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.API_MAX_BODY_BYTES)
    if settings.API_FAST_PATH:
        app.add_middleware(UserListFastPath)
    app.add_middleware(RequestContextMiddleware)
    if settings.API_CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.API_CORS_ORIGINS,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=[
                "Retry-After",
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Idempotent-Replayed",
            ],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    v1 = APIRouter(prefix="/v1")
    for router in (
        recommendations_router,
        movies_router,
        users_router,
        events_router,
        experiments_router,
        admin_router,
        api_keys_router,
    ):
        v1.include_router(router)
    app.include_router(v1)
    app.include_router(health_router)
    app.openapi = lambda: _problem_openapi(app)  # type: ignore[method-assign]
    return app
