"""The Celery application: Redis broker and result backend, reliability options, the nightly schedule.

Each worker process builds its database engine and Redis client lazily, on first use, and forgets
them in `worker_process_init`, so a forked child never reuses its parent's connections.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import after_setup_logger, after_setup_task_logger, worker_process_init
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.session import create_db_engine, create_session_factory
from services.embedded import resolve_urls
from services.settings import Settings, get_settings
from services.worker import log_context

if TYPE_CHECKING:  # beat and the CLI import this module; they need neither ml nor MLflow
    from services.worker.retrain import Services
    from services.worker.tracking import Tracker

RETRAIN_TASK = "movierec.retrain"
PRECOMPUTE_CHUNK_TASK = "movierec.precompute_chunk"
PROMOTE_TASK = "movierec.promote"
ABANDON_TASK = "movierec.abandon_promotion"


def crontab_from(expression: str) -> crontab:
    """A Celery crontab from five cron fields: minute hour day-of-month month day-of-week."""
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return crontab(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
    )


def create_celery_app(settings: Settings) -> Celery:
    """The Celery app configured from `settings` (URLs resolved as every other process does)."""
    urls = resolve_urls(settings)
    hard_limit = settings.RETRAIN_TIME_LIMIT.total_seconds()
    app = Celery(
        "movierec",
        broker=urls.redis_url,
        backend=urls.redis_url,
        include=["services.worker.tasks.training", "services.worker.tasks.recommendations"],
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        # A task is acknowledged once it has finished, and handed back if its process dies, so a
        # lost worker never loses a retrain. Every task is idempotent, which makes this safe.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_soft_time_limit=settings.RETRAIN_SOFT_TIME_LIMIT.total_seconds(),
        task_time_limit=hard_limit,
        # An unacknowledged message goes back to the queue after this; it must outlast the
        # longest task, or a running retrain would be delivered a second time.
        broker_transport_options={"visibility_timeout": int(hard_limit) + 600},
        result_backend_transport_options={"visibility_timeout": int(hard_limit) + 600},
        result_expires=7 * 24 * 3600,
        result_extended=True,
        broker_connection_retry_on_startup=True,
        # KiB: a child that grew past this (a retrain of 1M ratings peaks near 2.6 GB) is replaced
        # once its task is done, which gives the memory back.
        worker_max_memory_per_child=1_500_000,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts_level="INFO",  # libraries print progress; it is not a warning
        # A failed precompute chunk calls the chord's error callback at once (it releases the lock).
        task_allow_error_cb_on_chord_header=True,
        beat_schedule={
            "nightly-retrain": {
                "task": RETRAIN_TASK,
                "schedule": crontab_from(settings.RETRAIN_CRON),
                "kwargs": {"trigger": "schedule"},
                # A retrain that cannot start within this window is dropped, not run at noon.
                "options": {"expires": settings.RETRAIN_EXPIRES.total_seconds()},
            }
        },
    )
    return app


app = create_celery_app(get_settings())

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
_redis: Redis | None = None
_tracker: Tracker | None = None


def get_engine() -> Engine:
    """This process's engine on the movierec database, built on first use."""
    global _engine, _session_factory
    if _engine is None:
        settings = get_settings()
        _engine = create_db_engine(resolve_urls(settings).database_url, "worker", pool_size=2)
        _session_factory = create_session_factory(_engine)
    return _engine


def get_session_factory() -> sessionmaker[Session]:
    """This process's session factory."""
    get_engine()
    assert _session_factory is not None
    return _session_factory


def get_redis() -> Redis:
    """This process's Redis client (application data, not the broker), built on first use."""
    global _redis
    if _redis is None:
        _redis = Redis.from_url(resolve_urls(get_settings()).redis_url, health_check_interval=30)
    return _redis


def get_tracker() -> Tracker:
    """This process's MLflow tracker, built on first use."""
    global _tracker
    if _tracker is None:
        _tracker = create_tracker(get_settings())
    return _tracker


def create_tracker(settings: Settings) -> Tracker:
    """A tracker on the configured MLflow (artifacts under `MLFLOW_ARTIFACT_ROOT` for a bare database)."""
    from services.worker.tracking import Tracker

    return Tracker(
        resolve_urls(settings).mlflow_tracking_uri,
        experiment=settings.MLFLOW_EXPERIMENT,
        model_name=settings.MLFLOW_MODEL_NAME,
        artifact_root=settings.MLFLOW_ARTIFACT_ROOT
        or str((settings.DATA_DIR / "mlflow-artifacts").resolve()),
    )


def get_services() -> Services:
    """Everything a retrain talks to, as this process's resources."""
    from services.worker.retrain import Services

    return Services(
        settings=get_settings(),
        engine=get_engine(),
        sessions=get_session_factory(),
        redis=get_redis(),
        tracker=get_tracker(),
    )


@contextmanager
def task_session() -> Iterator[Session]:
    """One transaction: commit if the block returns, roll back if it raises."""
    with get_session_factory().begin() as session:
        yield session


@worker_process_init.connect
def reset_resources(**_: Any) -> None:
    """Forget connections inherited from the parent; the child opens its own on first use."""
    global _engine, _session_factory, _redis, _tracker
    if _engine is not None:
        _engine.dispose(close=False)  # the parent's sockets stay the parent's
    _engine = _session_factory = None
    _redis = None
    _tracker = None


@after_setup_logger.connect
@after_setup_task_logger.connect
def _structured_logs(logger: logging.Logger, **_: Any) -> None:
    log_context.install(logger)
    logging.getLogger("psycopg").addFilter(log_context.drop_ignored_pipeline_errors)
