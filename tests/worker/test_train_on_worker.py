"""`train_on_worker`, which `movierec train` and `movierec up` wait on."""

from __future__ import annotations

import gc
import time

import pytest
import typer

from services.worker.cli import train_on_worker
from tests.worker.conftest import WorkerStack


def test_waiting_stops_when_the_worker_is_gone(stack: WorkerStack) -> None:
    # given: no worker consumes this stack's queue, and the one we "started" has exited
    started = time.monotonic()
    # when
    with pytest.raises(typer.Exit) as exited:
        train_on_worker(True, worker_alive=lambda: False, celery=stack.celery)
    # then: an error at once, not a wait for a task nobody will run
    assert exited.value.exit_code == 1
    assert time.monotonic() - started < 10
    # The traceback holds the task's result handle; free it while Redis still runs.
    del exited
    gc.collect()


def test_queues_without_waiting(stack: WorkerStack) -> None:
    assert train_on_worker(False, celery=stack.celery) is None
    assert stack.redis.llen("celery") >= 1  # the task waits in the broker's default queue
