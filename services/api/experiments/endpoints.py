"""A/B experiments (admin) and users' assignments."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from db.models import Experiment
from services.api.deps import AdminKey, ExperimentId, ReadKey, SessionDep, StateDep, UserId
from services.api.errors import problem_responses
from services.api.experiments.schemas import (
    AssignmentRead,
    ExperimentCreate,
    ExperimentPage,
    ExperimentRead,
    ExperimentRef,
    ExperimentStatus,
    VariantRef,
)
from services.api.experiments.service import announce_change, experiment_snapshot
from services.api.experiments.service import experiment as experiment_service
from services.api.idempotency import IdempotencyKeyHeader, run_idempotent
from services.api.redis_guard import RedisUnavailable
from services.api.routing import StrictQueryRoute
from services.api.state import AppState
from services.api.transaction import after_commit

router = APIRouter(tags=["experiments"], route_class=StrictQueryRoute)


def _publish_after_commit(session: Session, state: AppState, experiment: Experiment) -> None:
    """Once committed: serve the change here at once, and tell the other instances."""
    snapshot = experiment_snapshot(experiment)
    experiment_id = experiment.id

    def apply() -> None:
        current = state.experiments.current
        if snapshot is not None:
            state.experiments.set(snapshot)
        elif current is not None and current.id == experiment_id:
            state.experiments.set(None)
        # Other instances also re-read within API_EXPERIMENT_REFRESH_INTERVAL without the notice.
        with contextlib.suppress(RedisUnavailable, RedisError):
            state.redis.run(announce_change)

    after_commit(session, apply)


@router.post(
    "/experiments",
    status_code=status.HTTP_201_CREATED,
    response_model=ExperimentRead,
    responses=problem_responses(401, 403, 409, 413, 422, 429, 503),
)
def create_experiment(
    _: AdminKey,
    request: Request,
    body: ExperimentCreate,
    session: SessionDep,
    state: StateDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Create an experiment as a draft: two to ten variants whose weights sum to 100."""
    return run_idempotent(
        session,
        request=request,
        principal=_,
        key=idempotency_key,
        payload=body,
        ttl=state.settings.API_IDEMPOTENCY_TTL,
        action=lambda: (
            201,
            ExperimentRead.model_validate(
                experiment_service.create(session, payload=body, models=state.models)
            ),
        ),
    )


@router.get(
    "/experiments", response_model=ExperimentPage, responses=problem_responses(401, 403, 422, 429, 503)
)
def list_experiments(
    _: AdminKey,
    session: SessionDep,
    status: Annotated[
        ExperimentStatus | None, Query(description="Only experiments in this state.", examples=["running"])
    ] = None,
    page: Annotated[int, Query(ge=1, le=10_000, description="Page number, from 1.", examples=[1])] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=100, description="Experiments per page (1-100).", examples=[20])
    ] = 20,
) -> ExperimentPage:
    """Experiments, newest first."""
    items, total = experiment_service.list_experiments(session, status=status, page=page, page_size=page_size)
    return ExperimentPage(
        items=[ExperimentRead.model_validate(e) for e in items], total=total, page=page, page_size=page_size
    )


@router.get(
    "/experiments/{experiment_id}",
    response_model=ExperimentRead,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
def get_experiment(_: AdminKey, experiment_id: ExperimentId, session: SessionDep) -> ExperimentRead:
    """One experiment."""
    return ExperimentRead.model_validate(experiment_service.get(session, experiment_id))


@router.post(
    "/experiments/{experiment_id}/start",
    response_model=ExperimentRead,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
def start_experiment(
    _: AdminKey, experiment_id: ExperimentId, session: SessionDep, state: StateDep
) -> ExperimentRead:
    """Start a draft; from now on users are assigned to its variants. One experiment runs at a time."""
    experiment = experiment_service.start(session, experiment_id)
    _publish_after_commit(session, state, experiment)
    return ExperimentRead.model_validate(experiment)


@router.post(
    "/experiments/{experiment_id}/stop",
    response_model=ExperimentRead,
    responses=problem_responses(401, 403, 404, 409, 422, 429, 503),
)
def stop_experiment(
    _: AdminKey, experiment_id: ExperimentId, session: SessionDep, state: StateDep
) -> ExperimentRead:
    """Stop an experiment (or cancel a draft); everyone gets the default recommendations again."""
    experiment = experiment_service.stop(session, experiment_id)
    _publish_after_commit(session, state, experiment)
    return ExperimentRead.model_validate(experiment)


@router.get(
    "/users/{user_id}/assignment",
    response_model=AssignmentRead,
    responses=problem_responses(401, 403, 422, 429),
)
def get_user_assignment(_: ReadKey, user_id: UserId, state: StateDep) -> AssignmentRead:
    """The user's variant of the running experiment (computed, not stored: the same on every call).

    Looking it up does not count as an exposure; serving recommendations does.
    """
    assignment = state.experiments.assign(user_id)
    if assignment is None:
        return AssignmentRead(user_id=user_id, experiment=None, variant=None, bucket=None, config=None)
    return AssignmentRead(
        user_id=user_id,
        experiment=ExperimentRef(id=assignment.experiment_id, name=assignment.experiment_name),
        variant=VariantRef(id=assignment.variant.id, name=assignment.variant.name),
        bucket=assignment.bucket,
        config=assignment.variant.config,
    )
