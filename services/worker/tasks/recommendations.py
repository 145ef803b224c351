"""Precompute chunk tasks and the chord callbacks that finish (or abandon) a promotion."""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.utils.log import get_task_logger

from services.settings import get_settings
from services.worker.celery_app import (
    ABANDON_TASK,
    PRECOMPUTE_CHUNK_TASK,
    PROMOTE_TASK,
    app,
    get_redis,
    get_services,
)
from services.worker.lock import LockLost, RetrainLock
from services.worker.log_context import log_context
from services.worker.precompute import cached_model, precompute_users
from services.worker.retrain import PromotionPlan, abandon_promotion, finish_promotion
from services.worker.tasks import TRANSIENT_ERRORS

logger = get_task_logger(__name__)


@app.task(
    bind=True,
    name=PRECOMPUTE_CHUNK_TASK,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=5,
    soft_time_limit=1800,
    time_limit=1900,
)
def precompute_chunk(
    self: Task,
    version: str,
    artifact_dir: str,
    strategies: list[str],
    user_ids: list[int],
    lock_token: str,
    mlflow_run_id: str = "-",
) -> int:
    """Write the top-N lists of some users for a version not yet served (idempotent).

    Returns:
        Users written.

    Raises:
        LockLost: The retrain that asked for it no longer holds the lock; nothing may be published.
    """
    lock = RetrainLock.from_token(get_redis(), get_settings().RETRAIN_LOCK_TTL, lock_token)
    with log_context(model_version=version, mlflow_run_id=mlflow_run_id):
        if not lock.refresh():
            raise LockLost(f"the retrain of {version} lost its lock; chunk dropped")
        with lock.heartbeat():
            report = precompute_users(get_redis(), cached_model(artifact_dir), version, user_ids, strategies)
        logger.info("precomputed %d users in %.1fs", report.users, report.seconds)
        return report.users


@app.task(
    bind=True,
    name=PROMOTE_TASK,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=60,
    max_retries=5,
)
def promote(self: Task, users_per_chunk: list[int], plan: dict[str, Any]) -> dict[str, Any]:
    """Chord callback: every chunk is written, so record the promotion and switch the live pointer."""
    promotion = PromotionPlan.from_dict(plan)
    services = get_services()
    with log_context(mlflow_run_id=promotion.mlflow_run_id, model_version=promotion.model_version):
        try:
            # Keep the lock over a transient failure: the retry needs it.
            return finish_promotion(
                services, promotion, sum(users_per_chunk), release_on_error=False
            ).to_dict()
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            abandon_promotion(services, promotion, repr(exc))
            raise


@app.task(name=ABANDON_TASK)
def abandon(plan: dict[str, Any]) -> None:
    """Chord error callback: a chunk failed for good; nothing is served from this version."""
    promotion = PromotionPlan.from_dict(plan)
    with log_context(mlflow_run_id=promotion.mlflow_run_id, model_version=promotion.model_version):
        abandon_promotion(get_services(), promotion, "a precompute chunk failed")
