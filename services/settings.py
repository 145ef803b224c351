"""Settings shared by every movierec process, read once from the environment (and `.env`)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """Configuration of the API, worker, beat, dashboard and CLI.

    Unset `DATABASE_URL` / `REDIS_URL` mean "use the embedded servers under `DATA_DIR`".
    """

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    ENVIRONMENT: Literal["local", "test", "production"] = "local"
    LOG_LEVEL: LogLevel = "INFO"
    DATA_DIR: Path = Path(".data")

    DATABASE_URL: str | None = Field(default=None, description="PostgreSQL DSN; unset: embedded server")
    REDIS_URL: str | None = Field(default=None, description="Redis URL; unset: embedded server")
    MLFLOW_TRACKING_URI: str | None = Field(default=None, description="unset: http://127.0.0.1:MLFLOW_PORT")
    MLFLOW_BACKEND_STORE_URI: str | None = Field(
        default=None, description="the MLflow server's database; unset: database `mlflow` on the app's server"
    )
    MLFLOW_ARTIFACT_ROOT: str | None = Field(default=None, description="unset: DATA_DIR/mlflow-artifacts")

    EMBEDDED_POSTGRES_PORT: int = Field(default=5433, ge=1, le=65535)
    EMBEDDED_REDIS_PORT: int = Field(default=6380, ge=1, le=65535)

    API_HOST: str = "127.0.0.1"
    API_PORT: int = Field(default=8000, ge=1, le=65535)
    DASHBOARD_PORT: int = Field(default=8501, ge=1, le=65535)
    MLFLOW_PORT: int = Field(default=5000, ge=1, le=65535)
    API_URL: str | None = Field(default=None, description="where the dashboard reaches the API")

    DB_POOL_SIZE: int = Field(default=5, ge=1)
    RECOMMENDATION_CACHE_TTL: timedelta = timedelta(hours=1)
    RETRAIN_CRON: str = "0 3 * * *"

    @field_validator("DATABASE_URL", mode="before")
    @classmethod
    def _use_psycopg3(cls, value: object) -> object:
        if isinstance(value, str):
            for scheme in ("postgres://", "postgresql://"):
                if value.startswith(scheme):
                    return value.replace(scheme, "postgresql+psycopg://", 1)
        return value

    @field_validator("RETRAIN_CRON")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("RETRAIN_CRON must have five fields: minute hour day month weekday")
        return value

    @model_validator(mode="after")
    def _explicit_servers_in_production(self) -> Self:
        if self.ENVIRONMENT == "production" and (self.DATABASE_URL is None or self.REDIS_URL is None):
            raise ValueError("DATABASE_URL and REDIS_URL must be set in production")
        return self

    @property
    def api_base_url(self) -> str:
        """Base URL of the REST API as seen from other local processes."""
        return self.API_URL or f"http://127.0.0.1:{self.API_PORT}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()
