"""Embedded PostgreSQL and Redis for `make run` and tests when no external URLs are configured."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from services.embedded.postgres import EmbeddedPostgres, EmbeddedServerError
from services.embedded.redis import EmbeddedRedis
from services.settings import Settings

APP_DATABASE = "movierec"
MLFLOW_DATABASE = "mlflow"

__all__ = [
    "APP_DATABASE",
    "MLFLOW_DATABASE",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServerError",
    "ServiceUrls",
    "embedded_postgres",
    "embedded_redis",
    "resolve_urls",
    "running_services",
]


@dataclass(frozen=True)
class ServiceUrls:
    """Where the database, Redis and MLflow tracking store are, once resolved."""

    database_url: str
    redis_url: str
    mlflow_tracking_uri: str
    mlflow_backend_store_uri: str

    def as_env(self) -> dict[str, str]:
        """Environment for child processes, so they use these servers instead of starting their own."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "MLFLOW_BACKEND_STORE_URI": self.mlflow_backend_store_uri,
        }


def embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    """The embedded PostgreSQL of this `DATA_DIR`."""
    return EmbeddedPostgres(settings.DATA_DIR / "postgres" / "data", settings.EMBEDDED_POSTGRES_PORT)


def embedded_redis(settings: Settings) -> EmbeddedRedis:
    """The embedded Redis of this `DATA_DIR`."""
    return EmbeddedRedis(settings.DATA_DIR / "redis", settings.EMBEDDED_REDIS_PORT)


def resolve_urls(settings: Settings) -> ServiceUrls:
    """Configured URLs, or those of the embedded servers for the ones left unset."""
    postgres = embedded_postgres(settings)
    database_url = settings.DATABASE_URL or postgres.url(APP_DATABASE)
    from sqlalchemy import make_url

    # MLflow keeps its own database on the same server unless told otherwise.
    backend = settings.MLFLOW_BACKEND_STORE_URI or make_url(database_url).set(
        database=MLFLOW_DATABASE
    ).render_as_string(hide_password=False)
    return ServiceUrls(
        database_url=database_url,
        redis_url=settings.REDIS_URL or embedded_redis(settings).url,
        mlflow_tracking_uri=settings.MLFLOW_TRACKING_URI or f"http://127.0.0.1:{settings.MLFLOW_PORT}",
        mlflow_backend_store_uri=backend,
    )


@contextmanager
def running_services(settings: Settings) -> Iterator[ServiceUrls]:
    """Make sure the database and Redis answer; start embedded ones for unset URLs.

    Servers this call started are stopped on exit; servers that were already running (another
    `movierec up`, say) are reused and left alone.
    """
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        if settings.DATABASE_URL is None:
            postgres = embedded_postgres(settings)
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            if postgres.start():
                started.append(postgres)
            postgres.ensure_database(APP_DATABASE)
            postgres.ensure_database(MLFLOW_DATABASE)
        if settings.REDIS_URL is None:
            redis_server = embedded_redis(settings)
            if redis_server.start():
                started.append(redis_server)
        yield resolve_urls(settings)
    finally:
        for server in reversed(started):
            server.stop()
