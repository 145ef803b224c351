"""`movierec up`: the whole stack on one machine, from an empty folder to a served model."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import typer
from rich.table import Table

from services.cli.common import console, services
from services.cli.supervisor import ServiceSpec, Supervisor
from services.embedded import ServiceUrls
from services.settings import Settings, get_settings


@dataclass(frozen=True)
class Endpoint:
    """A service `up` starts, and the URL that says it is healthy."""

    spec: ServiceSpec
    url: str
    health_url: str


def _movierec(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli.main", *args]


def _endpoint(name: str, command: list[str], env: dict[str, str], url: str, health: str) -> Endpoint:
    return Endpoint(ServiceSpec(name, command, env), url, health)


def backend(settings: Settings, urls: ServiceUrls) -> list[Endpoint]:
    """What must run before the first model can be trained: MLflow and a Celery worker."""
    env = urls.as_env()
    mlflow = f"http://127.0.0.1:{settings.MLFLOW_PORT}"
    return [
        _endpoint("mlflow", _movierec("serve", "mlflow"), env, mlflow, f"{mlflow}/health"),
        _endpoint("worker", _movierec("serve", "worker"), env, "celery worker", ""),
    ]


def frontend(settings: Settings, urls: ServiceUrls) -> list[Endpoint]:
    """The API, the nightly schedule and the dashboard."""
    env = urls.as_env()
    api_env = dict(env)
    # The demo replay sends a few thousand requests with one key; the local stack lets it through.
    api_env.setdefault("API_RATE_LIMIT_PER_MINUTE", os.environ.get("API_RATE_LIMIT_PER_MINUTE", "20000"))
    api = f"http://127.0.0.1:{settings.API_PORT}"
    dashboard = f"http://127.0.0.1:{settings.DASHBOARD_PORT}"
    return [
        _endpoint("api", _movierec("serve", "api"), api_env, f"{api}/docs", f"{api}/ready"),
        _endpoint(
            "beat", _movierec("serve", "beat"), env, f"nightly retrain at {settings.RETRAIN_CRON} UTC", ""
        ),
        _endpoint(
            "dashboard", _movierec("serve", "dashboard"), env, dashboard, f"{dashboard}/_stcore/health"
        ),
    ]


def _wait_healthy(endpoints: list[Endpoint], supervisor: Supervisor, timeout: float = 180.0) -> None:
    pending = {endpoint.spec.name: endpoint for endpoint in endpoints if endpoint.health_url}
    deadline = time.monotonic() + timeout
    with console.status("waiting for services to be healthy") as status:
        while pending and time.monotonic() < deadline:
            for name, endpoint in list(pending.items()):
                process = supervisor.children.get(name)
                if process is not None and process.poll() is not None:
                    raise typer.Exit(1)
                try:
                    with urllib.request.urlopen(endpoint.health_url, timeout=2) as response:
                        if response.status == 200:
                            del pending[name]
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
            status.update(f"waiting for {', '.join(pending) or 'nothing'}")
            time.sleep(0.5)
    if pending:
        console.print(f"[yellow]still starting after {timeout:.0f}s:[/] {', '.join(pending)}")


def _ensure_data(urls: ServiceUrls) -> None:
    from sqlalchemy import func, select

    from db.models import Rating
    from db.session import create_db_engine

    engine = create_db_engine(urls.database_url, "cli")
    try:
        with engine.connect() as connection:
            ratings = connection.scalar(select(func.count()).select_from(Rating)) or 0
    finally:
        engine.dispose()
    if ratings == 0:
        from services.cli.data_commands import load_source

        console.print("empty database: loading MovieLens 100K")
        load_source("ml-100k", urls)
    else:
        console.print(f"database has {ratings:,} ratings")


def _ensure_model(urls: ServiceUrls, supervisor: Supervisor) -> None:
    """Train the first model on the worker when nothing is served yet.

    Raises:
        typer.Exit: The worker exited during the training (its log is named).
    """
    from redis import Redis

    from services.live_model import read_live_model
    from services.worker.cli import print_result, train_on_worker

    client = Redis.from_url(urls.redis_url)
    try:
        live = read_live_model(client)
    finally:
        client.close()
    if live is not None:
        console.print(f"serving model {live.version}")
        return
    console.print("no model is served yet: training the first one (about a minute on MovieLens 100K)")
    worker_log = supervisor.log_path("worker")

    def worker_alive() -> bool:
        process = supervisor.children.get("worker")
        return process is not None and process.poll() is None

    try:
        result = train_on_worker(True, worker_alive=worker_alive)
    except typer.Exit:
        if not worker_alive():
            console.print(f"[red]the worker stopped; its log: {worker_log}[/]")
            raise
        console.print(f"[yellow]the first training failed; see {worker_log}[/]")
        return
    if result is not None:
        print_result(result)
        if result.get("status") != "promoted":
            console.print(f"[yellow]the first training did not produce a served model; see {worker_log}[/]")


def up() -> None:
    """Start everything: database, Redis, migrations, data, model, every service, and a demo experiment.

    Ctrl-C stops every process it started.
    """
    from db import migrate

    settings = get_settings()
    started = time.monotonic()
    with services(settings) as urls:
        migrate.upgrade(urls.database_url)
        _ensure_data(urls)
        supervisor = Supervisor(settings.DATA_DIR / "logs")
        endpoints = backend(settings, urls)
        try:
            for endpoint in endpoints:
                supervisor.start(endpoint.spec)
            _wait_healthy(endpoints, supervisor)
            _ensure_model(urls, supervisor)
            front = frontend(settings, urls)
            for endpoint in front:
                supervisor.start(endpoint.spec)
            _wait_healthy(front, supervisor)
            endpoints += front
            # Fills the dashboard on a first start; does nothing once the demo has run.
            supervisor.start(ServiceSpec("seed-demo", _movierec("seed-demo"), urls.as_env(), oneshot=True))
        except BaseException:
            supervisor.stop_all()
            raise
        table = Table(title=f"movierec is up ({time.monotonic() - started:.0f}s) — Ctrl-C stops everything")
        table.add_column("service")
        table.add_column("where")
        table.add_row("postgres", urls.database_url)
        table.add_row("redis", urls.redis_url)
        for endpoint in endpoints:
            table.add_row(endpoint.spec.name, endpoint.url)
        table.add_row("admin API key", str(settings.DATA_DIR / "admin-api-key"))
        table.add_row("logs", str(settings.DATA_DIR / "logs"))
        console.print(table)
        code = supervisor.wait()
    raise typer.Exit(code)
