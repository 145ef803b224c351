"""Dependencies shared by every domain: the app state, the request's transaction, API keys, ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
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
MAX_K = 100
"""Most movies one list may ask for."""


def app_state(request: Request) -> AppState:
    """The state the lifespan built (hot endpoints call this instead of solving `StateDep`)."""
    state: AppState = request.app.state.api
    return state


async def get_state(request: Request) -> AppState:
    """The state the lifespan built, as a dependency."""
    return app_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(request: Request) -> Iterator[Session]:
    """Commit if the endpoint returns, roll back if it raises."""
    state: AppState = request.app.state.api
    with state.session_factory.begin() as session:
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is a 5xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


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


class ScopedApiKey(APIKeyHeader):
    """The `X-API-Key` security scheme, as the dependency that checks it: a valid, unrevoked key
    with `scope`, counted against its rate limit.

    One dependency rather than a scheme plus a checker: a key verified in the last seconds and the
    rate-limit round trip cost no worker thread, and no second dependency to solve per request;
    only a key to look up in the database does. With `counted=False` the endpoint must count the
    request itself (`counted_later`), in a round trip it makes anyway.
    """

    def __init__(self, scope: str, *, counted: bool = True) -> None:
        super().__init__(
            name="X-API-Key",
            auto_error=False,
            scheme_name="ApiKey",
            description="An API key (`mr_...`). Scopes: `read`, `write`, `admin` (admin implies all).",
        )
        self.scope = scope
        self.counted = counted

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        state: AppState = request.app.state.api
        api_key = request.headers.get("x-api-key")
        principal = cached_principal(state.keys, api_key)
        if principal is None:
            principal = await run_in_threadpool(authenticate, state.keys, state.session_factory, api_key)
        if self.counted:
            apply_rate_limit(request, await state.limiter.ahit(principal.key_id))
        if not principal.allows(self.scope):
            raise Forbidden(f"This operation needs an API key with the {self.scope!r} scope.")
        return principal


def counted_later(request: Request, principal: Principal) -> RequestCount:
    """What an endpoint using `ReadKeyCountedLater` hands to the service that counts the request."""
    return RequestCount(principal.key_id, lambda status: apply_rate_limit(request, status))


ReadKey = Annotated[Principal, Depends(ScopedApiKey("read"))]
WriteKey = Annotated[Principal, Depends(ScopedApiKey("write"))]
AdminKey = Annotated[Principal, Depends(ScopedApiKey("admin"))]
ReadKeyCountedLater = Annotated[Principal, Depends(ScopedApiKey("read", counted=False))]
"""A read key whose request the endpoint counts itself (see `counted_later`)."""


UserId = Annotated[int, Path(ge=1, le=MAX_ID, description="The user's id.", examples=[42])]
MovieId = Annotated[int, Path(ge=1, le=MAX_ID, description="The movie's id.", examples=[1])]
ExperimentId = Annotated[int, Path(ge=1, le=MAX_INT, description="The experiment's id.", examples=[1])]
K = Annotated[
    int, Query(ge=1, le=MAX_K, description=f"How many movies to return (1-{MAX_K}).", examples=[10])
]
