"""Liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.api.deps import StateDep
from services.api.errors import PROBLEM_MEDIA_TYPE, problem_body, problem_responses
from services.api.health.schemas import Checks, Liveness, Readiness
from services.api.state import AppState

router = APIRouter(tags=["health"])


def _database_ok(state: AppState) -> bool:
    try:
        with state.session_factory() as session:
            session.execute(text("SELECT 1"))
        return True
    except DBAPIError:
        return False


@router.get("/health", response_model=Liveness)
async def get_health() -> Liveness:
    """Liveness: the process answers (checks nothing else)."""
    return Liveness(status="ok")


@router.get("/ready", response_model=Readiness, responses=problem_responses(503))
def get_ready(request: Request, state: StateDep) -> Readiness | JSONResponse:
    """Readiness: 200 while recommendations can be served (`degraded` if a dependency is down), else 503."""
    database = _database_ok(state)
    redis = state.redis.ping()
    model = state.models.live
    checks = Checks(
        database="ok" if database else "unavailable",
        redis="ok" if redis else "unavailable",
        model="ok" if model is not None else "unavailable",
    )
    version = model.version if model is not None else None
    if model is None or not (database or redis):
        body = problem_body(
            request,
            status=503,
            title="Not ready",
            detail="No model is loaded yet." if model is None else "Neither the database nor Redis answers.",
            problem_type="urn:movierec:problem:not-ready",
            checks=checks.model_dump(),
            model_version=version,
        )
        return JSONResponse(
            body, status_code=503, media_type=PROBLEM_MEDIA_TYPE, headers={"Retry-After": "5"}
        )
    detail: str | None = None
    if not redis:
        detail = "Redis is unavailable: lists are computed for every request and rate limits are off."
    elif not database:
        detail = "The database is unavailable: cached lists are served, writes are refused."
    return Readiness(
        status="degraded" if detail else "ok", checks=checks, model_version=version, detail=detail
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
def get_metrics(state: StateDep) -> Response:
    """Prometheus metrics: requests and latencies per route, cache hits and misses, model, A/B exposures."""
    state.metrics.redis_up.set(1 if state.redis.available else 0)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
