"""Admin work: queueing a retrain for the worker, and reporting on models."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from services.api.errors import ServiceUnavailable
from services.api.redis_guard import RedisUnavailable
from services.api.state import AppState
from services.live_model import LiveModel, read_live_model

logger = logging.getLogger(__name__)

RETRAIN_TASK = "movierec.retrain"
_CELERY_KEY = "celery"
_celery_lock = threading.Lock()


class TaskQueueUnavailable(ServiceUnavailable):
    title = "Task queue unavailable"

    def __init__(self) -> None:
        super().__init__("The task queue (Redis) cannot be reached; retry later.", retry_after=10)


def _celery(state: AppState) -> Celery:
    """A Celery client that only sends tasks; the worker's own app is never imported here."""
    with _celery_lock:
        app = state.extras.get(_CELERY_KEY)
        if app is None:
            app = Celery("movierec-api", broker=state.redis_url, backend=state.redis_url)
            app.conf.update(
                task_serializer="json",
                result_serializer="json",
                accept_content=["json"],
                broker_connection_retry=False,
                broker_connection_max_retries=0,
                broker_connection_timeout=2,
                broker_transport_options={"socket_timeout": 2, "socket_connect_timeout": 2, "max_retries": 0},
                redis_socket_timeout=2,
                redis_socket_connect_timeout=2,
                result_backend_transport_options={"retry_policy": {"max_retries": 0}},
            )
            state.extras[_CELERY_KEY] = app
        assert isinstance(app, Celery)
        return app


class AdminService:
    def enqueue_retrain(self, state: AppState) -> str:
        """Queue `movierec.retrain`; returns the task id.

        Raises:
            TaskQueueUnavailable: Redis did not take the message.
        """
        if not state.redis.available:
            raise TaskQueueUnavailable()
        task_id = str(uuid.uuid4())
        try:
            _celery(state).send_task(RETRAIN_TASK, kwargs={"trigger": "api"}, task_id=task_id, retry=False)
        except (KombuOperationalError, RedisError, OSError) as exc:
            logger.warning("cannot queue a retrain: %s", exc)
            raise TaskQueueUnavailable() from exc
        logger.info("queued retrain task %s", task_id)
        return task_id

    def task_status(self, state: AppState, task_id: str) -> tuple[str, Any]:
        """A task's state and, once it succeeded, its result."""
        try:
            result = _celery(state).AsyncResult(task_id)
            task_state = str(result.state)
            value = result.result if task_state == "SUCCESS" else None
        except (KombuOperationalError, RedisError, OSError) as exc:
            raise TaskQueueUnavailable() from exc
        return task_state, value if isinstance(value, dict | list | str | int | float | bool) else None

    def live_pointer(self, state: AppState) -> LiveModel | None:
        """The live-model pointer, None if unset or unreadable."""
        try:
            return state.redis.run(read_live_model)
        except (RedisUnavailable, RedisError, TypeError, ValueError):
            return None


admin = AdminService()
