"""Users and ratings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from services.api.deps import ReadKey, SessionDep, StateDep, UserId, WriteKey
from services.api.errors import problem_responses
from services.api.idempotency import IdempotencyKeyHeader, run_idempotent
from services.api.routing import StrictQueryRoute
from services.api.users.schemas import RatingCreate, RatingPage, RatingRead, UserCreate, UserRead
from services.api.users.service import rating as rating_service
from services.api.users.service import user as user_service

router = APIRouter(tags=["users"], route_class=StrictQueryRoute)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=problem_responses(401, 403, 409, 413, 422, 429, 503),
)
def create_user(
    _: WriteKey,
    request: Request,
    body: UserCreate,
    session: SessionDep,
    state: StateDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Create a user; recommendations work for them at once (cold start until they rate movies)."""
    return run_idempotent(
        session,
        request=request,
        principal=_,
        key=idempotency_key,
        payload=body,
        ttl=state.settings.API_IDEMPOTENCY_TTL,
        action=lambda: (201, UserRead.model_validate(user_service.create(session, payload=body))),
    )


@router.get(
    "/users/{user_id}", response_model=UserRead, responses=problem_responses(401, 403, 404, 422, 429, 503)
)
def get_user(_: ReadKey, user_id: UserId, session: SessionDep) -> UserRead:
    """One user."""
    return UserRead.model_validate(user_service.get(session, user_id))


@router.get(
    "/users/{user_id}/ratings",
    response_model=RatingPage,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
def list_user_ratings(
    _: ReadKey,
    user_id: UserId,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=10_000, description="Page number, from 1.", examples=[1])] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=100, description="Ratings per page (1-100).", examples=[20])
    ] = 20,
) -> RatingPage:
    """A user's ratings, newest first."""
    user_service.get(session, user_id)
    items, total = rating_service.list_for_user(session, user_id=user_id, page=page, page_size=page_size)
    return RatingPage(
        items=[RatingRead.model_validate(r) for r in items], total=total, page=page, page_size=page_size
    )


@router.post(
    "/ratings",
    response_model=RatingRead,
    responses={
        201: {"model": RatingRead, "description": "The rating is new."},
        **problem_responses(401, 403, 404, 413, 422, 429, 503),
    },
)
def put_rating(
    _: WriteKey,
    request: Request,
    body: RatingCreate,
    session: SessionDep,
    state: StateDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Rate a movie (201 for a new rating, 200 when it replaces one).

    The user's next recommendations reflect the rating at once (their cached lists are dropped and
    the rating is folded into the model), without waiting for the nightly retrain.
    """

    def action() -> tuple[int, RatingRead]:
        rating, created = rating_service.record(session, state, payload=body)
        return (201 if created else 200), RatingRead.model_validate(rating)

    return run_idempotent(
        session,
        request=request,
        principal=_,
        key=idempotency_key,
        payload=body,
        ttl=state.settings.API_IDEMPOTENCY_TTL,
        action=action,
    )
