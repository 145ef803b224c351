"""Command-line entry points of the worker: `train`, `serve_worker`, `serve_beat`.

Plain functions whose parameters and docstrings become typer options and `--help`.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from services.cli.common import console, fail, services
from services.settings import get_settings

if TYPE_CHECKING:
    from celery import Celery

EXIT_REJECTED = 3


def print_result(result: dict[str, Any]) -> None:
    """A retrain's outcome as a table."""
    status = result.get("status", "?")
    colour = {"promoted": "green", "rejected": "yellow", "already_running": "cyan"}.get(status, "red")
    table = Table(show_header=False, box=None)
    table.add_row("status", f"[bold {colour}]{status}[/]")
    table.add_row("reason", str(result.get("reason", "")))
    for key in ("model_version", "registry_version", "mlflow_run_id", "users_precomputed"):
        if result.get(key) is not None:
            table.add_row(key.replace("_", " "), str(result[key]))
    champion = result.get("champion_metrics") or {}
    for name, value in sorted((result.get("metrics") or {}).items()):
        old = champion.get(name)
        table.add_row(name, f"{value:.4f}" + (f"  (champion {old:.4f})" if old is not None else ""))
    stages = result.get("stage_seconds") or {}
    if stages:
        table.add_row("seconds", ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items()))
    console.print(table)


def _exit_for(result: dict[str, Any]) -> None:
    if result.get("status") == "rejected":
        raise typer.Exit(EXIT_REJECTED)


def train(wait: bool = True, sync: bool = False) -> None:
    """Retrain now: extract, train, evaluate, log to MLflow, gate, precompute and serve.

    The retrain is queued for the Celery worker and the command waits for it; --no-wait prints the task id and returns; --sync runs it in this process, without a worker.

    Exit code: 0 when the new model is served or a retrain was already running, 3 when the quality gate rejected it, 1 on failure.
    """
    result = _train_here() if sync else train_on_worker(wait)
    if result is None:
        return
    print_result(result)
    _exit_for(result)


def _train_here() -> dict[str, Any]:
    from redis import Redis

    from db.session import create_db_engine, create_session_factory
    from services.worker.celery_app import create_tracker
    from services.worker.retrain import Services, retrain_inline

    settings = get_settings()
    with services(settings) as urls:
        engine = create_db_engine(urls.database_url, "cli", pool_size=2)
        client = Redis.from_url(urls.redis_url)
        try:
            with console.status("retraining") as status:

                def progress(stage: str) -> None:
                    status.update(f"retraining: {stage}")
                    console.log(f"stage {stage}")

                outcome = retrain_inline(
                    Services(
                        settings, engine, create_session_factory(engine), client, create_tracker(settings)
                    ),
                    owner=f"cli-{socket.gethostname()}-{os.getpid()}",
                    trigger="cli",
                    progress=progress,
                )
        finally:
            client.close()
            engine.dispose()
    return outcome.to_dict()


def train_on_worker(
    wait: bool, *, worker_alive: Callable[[], bool] | None = None, celery: Celery | None = None
) -> dict[str, Any] | None:
    """Queue a retrain; with `wait`, follow it to its result.

    Args:
        wait: Wait for the result (else return None once queued).
        worker_alive: When given, checked while waiting: a worker this process started that has
            exited will not take the task, so waiting stops with an error instead of forever.
        celery: The Celery app to queue on (default: the worker's, configured from the settings).

    Raises:
        typer.Exit: The retrain failed, or the worker exited.
    """
    from services.worker.celery_app import RETRAIN_TASK

    if celery is None:
        from services.worker.celery_app import app

        celery = app
    async_result = celery.send_task(RETRAIN_TASK, kwargs={"trigger": "manual"})
    console.print(f"queued {RETRAIN_TASK} as task {async_result.id}")
    if not wait:
        return None
    with console.status("waiting for a worker") as status:
        while not async_result.ready():
            if worker_alive is not None and not worker_alive():
                raise fail("the worker exited before the retrain finished")
            info = async_result.info if isinstance(async_result.info, dict) else {}
            state = async_result.state
            status.update(f"{state.lower()}: {info.get('stage', '')}" if state != "PENDING" else "queued")
            time.sleep(0.5)
    if async_result.failed():
        raise fail(f"retrain failed: {async_result.result!r}")
    result = async_result.get()
    assert isinstance(result, dict)
    return result


def _exec_celery(args: list[str], env: dict[str, str]) -> None:
    """Replace this process with `celery -A services.worker.celery_app ...`, so signals reach it."""
    executable = shutil.which("celery") or str(Path(sys.executable).with_name("celery"))
    if not Path(executable).exists():
        raise fail("celery is not installed in this environment")
    argv = [executable, "-A", "services.worker.celery_app", *args]
    console.print(f"[dim]exec {' '.join(argv)}[/]")
    os.execvpe(argv[0], argv, {**os.environ, **env})


def serve_worker(concurrency: int = 1) -> None:
    """The Celery worker that retrains and precomputes (prefork; one retrain at a time overall)."""
    settings = get_settings()
    with services(settings) as urls:
        _exec_celery(
            [
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                f"--loglevel={settings.LOG_LEVEL}",
                "--hostname=movierec-worker@%h",
            ],
            urls.as_env(),
        )


def serve_beat() -> None:
    """Celery beat: queues the nightly retrain at RETRAIN_CRON (UTC)."""
    settings = get_settings()
    schedule = (settings.DATA_DIR / "celerybeat-schedule").resolve()
    schedule.parent.mkdir(parents=True, exist_ok=True)
    with services(settings) as urls:
        _exec_celery(["beat", f"--loglevel={settings.LOG_LEVEL}", f"--schedule={schedule}"], urls.as_env())
