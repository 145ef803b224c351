"""Admin: retrain, follow the retrain, and see the models."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, status

from services.api.admin.repository import ModelVersionRepository
from services.api.admin.schemas import (
    LivePointerRead,
    ModelsRead,
    ModelVersionRead,
    RetrainAccepted,
    TaskStatus,
)
from services.api.admin.service import RETRAIN_TASK
from services.api.admin.service import admin as admin_service
from services.api.deps import AdminKey, SessionDep, StateDep
from services.api.errors import problem_responses
from services.api.routing import StrictQueryRoute

router = APIRouter(prefix="/admin", tags=["admin"], route_class=StrictQueryRoute)


@router.post(
    "/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RetrainAccepted,
    responses=problem_responses(401, 403, 429, 503),
)
def post_retrain(_: AdminKey, state: StateDep) -> RetrainAccepted:
    """Queue a retrain now; the worker trains, gates and, if better, promotes the new model.

    Running API instances switch to a promoted model within seconds, without a restart.
    """
    task_id = admin_service.enqueue_retrain(state)
    return RetrainAccepted(task_id=task_id, task_name=RETRAIN_TASK, status_url=f"/v1/admin/retrain/{task_id}")


@router.get(
    "/retrain/{task_id}",
    response_model=TaskStatus,
    responses=problem_responses(401, 403, 422, 429, 503),
)
def get_retrain_status(
    _: AdminKey,
    task_id: Annotated[
        UUID,
        Path(
            description="The task id `POST /v1/admin/retrain` returned.",
            examples=["5d0f1c6e-8b2a-4f3e-9c1d-7a6b5e4d3c2b"],
        ),
    ],
    state: StateDep,
) -> TaskStatus:
    """Where a retrain is: queued (or unknown), started, done or failed."""
    task_state, result = admin_service.task_status(state, str(task_id))
    return TaskStatus(task_id=str(task_id), state=task_state, result=result)


@router.get("/models", response_model=ModelsRead, responses=problem_responses(401, 403, 429, 503))
def get_models(_: AdminKey, session: SessionDep, state: StateDep) -> ModelsRead:
    """Trained models with their metrics and gate decisions, the champion, and the live pointer."""
    repository = ModelVersionRepository(session)
    pointer = admin_service.live_pointer(state)
    champion = repository.get_champion()
    live = state.models.live
    return ModelsRead(
        live=LivePointerRead(**pointer.__dict__) if pointer is not None else None,
        served_version=live.version if live is not None else None,
        loaded_versions=state.models.versions(),
        champion=ModelVersionRead.model_validate(champion) if champion is not None else None,
        versions=[ModelVersionRead.model_validate(row) for row in repository.list_recent()],
    )
