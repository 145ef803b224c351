"""`movierec up`: the whole stack on one machine, from an empty folder to a served model."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import typer
from rich.table import Table
from sqlalchemy import func, select

from db import migrate
from db.models import Rating
from db.session import create_db_engine
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


def stack(settings: Settings, urls: ServiceUrls) -> list[Endpoint]:
    """The long-running services of the stack, in start order."""
    env = urls.as_env()
    mlflow = f"http://127.0.0.1:{settings.MLFLOW_PORT}"
    return [
        Endpoint(ServiceSpec("mlflow", _movierec("serve", "mlflow"), env), mlflow, f"{mlflow}/health"),
    ]


def _wait_healthy(endpoints: list[Endpoint], supervisor: Supervisor, timeout: float = 180.0) -> None:
    pending = {endpoint.spec.name: endpoint for endpoint in endpoints}
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


def up() -> None:
    """Start everything: database, Redis, migrations, data, model, and every service. Ctrl-C stops all."""
    settings = get_settings()
    started = time.monotonic()
    with services(settings) as urls:
        migrate.upgrade(urls.database_url)
        _ensure_data(urls)
        endpoints = stack(settings, urls)
        supervisor = Supervisor(settings.DATA_DIR / "logs")
        try:
            for endpoint in endpoints:
                supervisor.start(endpoint.spec)
            _wait_healthy(endpoints, supervisor)
        except BaseException:
            supervisor.stop_all()
            raise
        table = Table(title=f"movierec is up ({time.monotonic() - started:.0f}s) — Ctrl-C stops everything")
        table.add_column("service")
        table.add_column("url")
        table.add_row("postgres", urls.database_url)
        table.add_row("redis", urls.redis_url)
        for endpoint in endpoints:
            table.add_row(endpoint.spec.name, endpoint.url)
        console.print(table)
        code = supervisor.wait()
    raise typer.Exit(code)
