"""`movierec.retrain`: the nightly (or on-demand) retrain.

The work happens in `services.worker.retrain`; this task adds Celery's part: progress states,
retries on transient errors, and handing a large precompute to a chord of chunk tasks.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task, chord
from celery.result import AsyncResult
from celery.utils.log import get_task_logger

from services.settings import get_settings
from services.worker.celery_app import RETRAIN_TASK, app, get_services
from services.worker.log_context import log_context
from services.worker.precompute import chunked
from services.worker.retrain import (
    PromotionPlan,
    RetrainResult,
    abandon_promotion,
    finish_promotion,
    precompute_inline,
    prepare,
)
from services.worker.tasks import TRANSIENT_ERRORS

logger = get_task_logger(__name__)
_settings = get_settings()


@app.task(
    bind=True,
    name=RETRAIN_TASK,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=_settings.RETRAIN_SOFT_TIME_LIMIT.total_seconds(),
    time_limit=_settings.RETRAIN_TIME_LIMIT.total_seconds(),
)
def retrain(self: Task, trigger: str = "manual", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Retrain, judge and (if it passes the gate) serve a new model; one at a time.

    Args:
        trigger: Why: `schedule` (beat), `manual` or `cli`; logged as an MLflow tag.
        overrides: Nested changes to `ml.artifact.TrainConfig`, e.g. `{"hybrid": {"svd": {"n_epochs": 5}}}`.

    Returns:
        `RetrainResult.to_dict()`: status `promoted`, `rejected` or `already_running`, the reason,
        the versions, the gate metrics and the seconds per stage.
    """
    task_id = self.request.id
    done = AsyncResult(task_id, app=app)
    if done.state == "SUCCESS" and isinstance(done.result, dict):  # a redelivered, finished task
        return done.result
    services = get_services()
    with log_context():

        def progress(stage: str) -> None:
            self.update_state(state="PROGRESS", meta={"stage": stage})

        outcome = prepare(services, owner=task_id, trigger=trigger, overrides=overrides, progress=progress)
        if isinstance(outcome, RetrainResult):
            return outcome.to_dict()
        return _precompute_and_promote(self, outcome)


def _precompute_and_promote(task: Task, plan: PromotionPlan) -> dict[str, Any]:
    services = get_services()
    size = services.settings.PRECOMPUTE_CHUNK_USERS
    if len(plan.user_ids) <= size:
        try:
            users = precompute_inline(
                services, plan, lambda stage: task.update_state(state="PROGRESS", meta={"stage": stage})
            )
        except BaseException as exc:
            abandon_promotion(services, plan, repr(exc))
            raise
        return finish_promotion(services, plan, users).to_dict()
    from services.worker.tasks.recommendations import abandon, precompute_chunk, promote

    chunks = chunked(plan.user_ids, size)
    logger.info("precomputing %d users in %d chunks", len(plan.user_ids), len(chunks))
    task.update_state(state="PROGRESS", meta={"stage": "precompute", "chunks": len(chunks)})
    plan.precompute_started = time.time()
    header = [
        precompute_chunk.s(
            plan.model_version,
            plan.artifact_dir,
            plan.strategies,
            chunk,
            plan.lock_token,
            mlflow_run_id=plan.mlflow_run_id,
        )
        for chunk in chunks
    ]
    payload = plan.to_dict()
    # The chord's callback takes this task's id, so whoever waits on the retrain gets its result.
    raise task.replace(chord(header, promote.s(payload)).on_error(abandon.si(payload)))
