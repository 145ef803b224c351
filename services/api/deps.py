"""Dependencies shared by every domain: the app state, the request's transaction, API keys, ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from services.api.auth.ratelimit import RateLimitStatus
from services.api.auth.service import Principal, authenticate, cached_principal
from services.api.errors import Forbidden, RateLimited
from services.api.recommendations.service import RequestCount
from services.api.state import AppState

# Ids are int64 in the database, but a JSON number above 2**53 - 1 loses precision in JavaScript
# clients, so the API accepts ids up to JavaScript's Number.MAX_SAFE_INTEGER.
MAX_ID = 2**53 - 1
MAX_INT = 2**31 - 1


async def get_state(request: Request) -> AppState:
    """The state the lifespan built."""
    state: AppState = request.app.state.api
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(request: Request) -> Iterator[Session]:
    """Commit if the endpoint returns, roll back if it raises."""
    state: AppState = request.app.state.api
    with state.session_factory.begin() as session:
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is a 5xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`mr_...`). Scopes: `read`, `write`, `admin` (admin implies all).",
)


def apply_rate_limit(request: Request, status: RateLimitStatus | None) -> None:
    """Report a request's rate-limit status in its headers; refuse it when over the limit.

    Raises:
        RateLimited: The key is over its limit.
    """
    if status is None:  # Redis unavailable: fail open
        return
    request.state.rate_limit = status  # sent as X-RateLimit-* headers by RequestContextMiddleware
    if status.retry_after is not None:
        state: AppState = request.app.state.api
        state.metrics.rate_limited.inc()
        raise RateLimited(status.limit, status.retry_after)


def require_scope(scope: str, *, counted: bool = True) -> Callable[..., Awaitable[Principal]]:
    """A dependency: a valid, unrevoked key with `scope`, counted against its rate limit.

    It runs on the event loop: a key verified in the last seconds and the rate-limit round trip
    cost no worker thread; only a key to look up in the database does. With `counted=False` the
    endpoint must count the request itself (`counted_later`), in a round trip it makes anyway.
    """

    async def dependency(
        request: Request, api_key: Annotated[str | None, Security(api_key_header)] = None
    ) -> Principal:
        state: AppState = request.app.state.api
        principal = cached_principal(state.keys, api_key)
        if principal is None:
            principal = await run_in_threadpool(authenticate, state.keys, state.session_factory, api_key)
        if counted:
            apply_rate_limit(request, await state.limiter.ahit(principal.key_id))
        if not principal.allows(scope):
            raise Forbidden(f"This operation needs an API key with the {scope!r} scope.")
        return principal

    dependency.__name__ = f"require_{scope}_scope" + ("" if counted else "_counted_later")
    return dependency


def counted_later(request: Request, principal: Principal) -> RequestCount:
    """What an endpoint using `ReadKeyCountedLater` hands to the service that counts the request."""
    return RequestCount(principal.key_id, lambda status: apply_rate_limit(request, status))


ReadKey = Annotated[Principal, Depends(require_scope("read"))]
WriteKey = Annotated[Principal, Depends(require_scope("write"))]
AdminKey = Annotated[Principal, Depends(require_scope("admin"))]
ReadKeyCountedLater = Annotated[Principal, Depends(require_scope("read", counted=False))]
"""A read key whose request the endpoint counts itself (see `counted_later`)."""


async def reject_unknown_query_parameters(request: Request) -> None:
    """Refuse query parameters the operation does not define (a typo such as `?genres=` is an error)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    allowed = _query_parameter_names(route) if route is not None else None
    if allowed is None:
        return
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": "Unknown query parameter", "type": "extra_forbidden"}
                for name in unknown
            ]
        )


def _query_parameter_names(route: object) -> set[str] | None:
    dependant = getattr(route, "dependant", None)
    return None if dependant is None else _query_names(dependant)


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.", examples=[42])]
MovieId = Annotated[int, Path(ge=1, le=MAX_ID, description="The movie's id.", examples=[1])]
ExperimentId = Annotated[int, Path(ge=1, le=MAX_INT, description="The experiment's id.", examples=[1])]
K = Annotated[int, Query(ge=1, le=100, description="How many movies to return (1-100).", examples=[10])]
