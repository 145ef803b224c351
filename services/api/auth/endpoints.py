"""API key management (admin)."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from redis.exceptions import RedisError

from services.api.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from services.api.auth.service import REVOCATIONS_CHANNEL
from services.api.auth.service import api_key as api_key_service
from services.api.deps import MAX_INT, AdminKey, SessionDep, StateDep
from services.api.errors import Conflict, problem_responses
from services.api.redis_guard import RedisUnavailable
from services.api.routing import StrictQueryRoute
from services.api.transaction import after_commit

router = APIRouter(prefix="/admin/api-keys", tags=["admin"], route_class=StrictQueryRoute)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(401, 403, 413, 422, 429, 503),
)
def create_api_key(_: AdminKey, body: ApiKeyCreate, session: SessionDep) -> ApiKeyCreated:
    """Create a key; the response holds its secret, which cannot be shown again."""
    created = api_key_service.create(session, name=body.name, scopes=body.scopes)
    key = api_key_service.get_by_id_or_prefix(session, created.key_id)
    return ApiKeyCreated.model_validate(
        {**ApiKeyRead.model_validate(key).model_dump(), "key": created.secret}
    )


@router.get("", response_model=list[ApiKeyRead], responses=problem_responses(401, 403, 422, 429, 503))
def list_api_keys(
    _: AdminKey,
    session: SessionDep,
    include_revoked: Annotated[bool, Query(description="Also list revoked keys.", examples=[False])] = False,
) -> list[ApiKeyRead]:
    """Every key, oldest first."""
    return [
        ApiKeyRead.model_validate(k)
        for k in api_key_service.list_keys(session, include_revoked=include_revoked)
    ]


@router.delete(
    "/{key_id}",
    response_model=ApiKeyRead,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
def revoke_api_key(
    principal: AdminKey,
    key_id: Annotated[int, Path(ge=1, le=MAX_INT, description="The key's id.", examples=[2])],
    session: SessionDep,
    state: StateDep,
) -> ApiKeyRead:
    """Revoke a key: every instance refuses it within a second (at most `API_AUTH_CACHE_TTL`)."""
    if key_id == principal.key_id:
        raise Conflict("A key cannot revoke itself; use another admin key.")
    key = api_key_service.revoke(session, api_key_service.get_by_id_or_prefix(session, key_id))
    digest = key.key_hash

    def forget() -> None:
        state.keys.forget(digest)
        # Without the notice, other instances stop trusting their cached copy within API_AUTH_CACHE_TTL.
        with contextlib.suppress(RedisUnavailable, RedisError):
            state.redis.run(lambda client: client.publish(REVOCATIONS_CHANNEL, digest))

    after_commit(session, forget)
    return ApiKeyRead.model_validate(key)
