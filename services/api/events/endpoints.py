"""Events from client apps (impressions, clicks, views, ratings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, status
from fastapi.responses import JSONResponse
from pydantic import Field

from services.api.deps import SessionDep, StateDep, WriteKey
from services.api.errors import problem_responses
from services.api.events.schemas import MAX_EVENTS_PER_REQUEST, EventCreate, EventsAccepted
from services.api.events.service import event as event_service
from services.api.idempotency import IdempotencyKeyHeader, run_idempotent
from services.api.routing import StrictQueryRoute

router = APIRouter(tags=["events"], route_class=StrictQueryRoute)

EventsBody = Annotated[
    EventCreate | Annotated[list[EventCreate], Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)],
    Body(
        description=f"One event, or a list of 1 to {MAX_EVENTS_PER_REQUEST}.",
        examples=[
            {
                "type": "click",
                "user_id": 42,
                "movie_id": 1,
                "request_id": "01932c4e-7a9b-7c3d-8e5f-0123456789ab",
                "position": 0,
            },
        ],
    ),
]


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    responses=problem_responses(401, 403, 413, 422, 429, 503),
)
def post_events(
    _: WriteKey,
    request: Request,
    body: EventsBody,
    session: SessionDep,
    state: StateDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Record what users did with their recommendations.

    Each event is tagged with the experiment and variant that served the list named by its
    `request_id` (or, without one, the experiment running at `occurred_at`).
    """
    events = body if isinstance(body, list) else [body]

    def action() -> tuple[int, EventsAccepted]:
        stored = event_service.record(session, events=events)
        return 202, EventsAccepted(accepted=len(stored), events=stored)

    return run_idempotent(
        session,
        request=request,
        principal=_,
        key=idempotency_key,
        payload=events,
        ttl=state.settings.API_IDEMPOTENCY_TTL,
        action=action,
    )
