"""Celery tasks: glue between the broker and the modules of `services.worker`."""

from __future__ import annotations

import redis.exceptions
from sqlalchemy.exc import OperationalError

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
"""Database or Redis briefly unreachable: retried with backoff. Anything else fails the task."""
