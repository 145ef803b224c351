"""Structured worker logs: every record carries the MLflow run id and model version being worked on."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from celery import current_task

LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s task=%(task_id)s run=%(mlflow_run_id)s "
    "version=%(model_version)s %(message)s"
)

_context: ContextVar[Mapping[str, str]] = ContextVar(
    "movierec_worker_log_context", default=MappingProxyType({})
)


class ContextFilter(logging.Filter):
    """Adds `task_id`, `mlflow_run_id` and `model_version` ("-" when unknown) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _context.get()
        task = current_task
        record.task_id = (task.request.id if task else None) or "-"
        record.mlflow_run_id = values.get("mlflow_run_id", "-")
        record.model_version = values.get("model_version", "-")
        return True


@contextmanager
def log_context(**values: str) -> Iterator[None]:
    """Records logged inside the block carry `values` (e.g. `mlflow_run_id=...`)."""
    token = _context.set(MappingProxyType({**_context.get(), **values}))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**values: str) -> None:
    """Add `values` to the current context until the enclosing `log_context` block ends."""
    _context.set(MappingProxyType({**_context.get(), **values}))


def install(logger: logging.Logger, fmt: str = LOG_FORMAT) -> None:
    """Give every handler of `logger` the context filter and the structured format."""
    for handler in logger.handlers:
        handler.addFilter(ContextFilter())
        handler.setFormatter(logging.Formatter(fmt))


def drop_ignored_pipeline_errors(record: logging.LogRecord) -> bool:
    """Filter out psycopg's "error ignored terminating Pipeline" warnings.

    psycopg logs them while another exception propagates, which its caller handles (MLflow's
    store retries an insert that way on every model logged).
    """
    return not record.getMessage().startswith("error ignored terminating")
