"""Settings shared by every movierec process, read once from the environment (and `.env`)."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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

    # REST API
    BOOTSTRAP_API_KEY: str | None = Field(default=None, min_length=20)
    """Admin key created on first start when no admin key exists; unset: a random one is generated
    and written to `DATA_DIR/admin-api-key`."""

    API_RATE_LIMIT_PER_MINUTE: int = Field(default=600, ge=1)
    """Requests each API key may make per minute (sliding window); over it the API answers 429."""
    API_CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins browsers may call the API from, e.g. `["https://app.example.com"]`; empty: no CORS."""
    API_MAX_BODY_BYTES: int = Field(default=1024 * 1024, ge=1024)
    """Larger request bodies are refused with 413."""

    API_REDIS_TIMEOUT: timedelta = timedelta(milliseconds=250)
    """Connect and read timeout of every Redis call on the request path."""
    API_REDIS_RETRY_AFTER: timedelta = timedelta(seconds=5)
    """After Redis fails, requests skip it for this long (circuit breaker) before trying again."""
    API_AUTH_CACHE_TTL: timedelta = timedelta(seconds=5)
    """How long a verified API key is trusted without asking the database (revocations are also
    pushed to every instance through Redis)."""
    API_MODEL_POLL_INTERVAL: timedelta = timedelta(seconds=5)
    """How often the live-model pointer is read, besides the announcements on the updates channel."""
    API_EXPERIMENT_REFRESH_INTERVAL: timedelta = timedelta(seconds=5)
    """How often the running experiment is re-read from the database."""
    API_EXPOSURE_FLUSH_INTERVAL: timedelta = timedelta(seconds=1)
    """How often logged A/B exposures are written to the database, in one INSERT per batch."""
    API_IDEMPOTENCY_TTL: timedelta = timedelta(hours=24)
    """How long the response to an `Idempotency-Key` is kept and replayed to retries."""
    API_COMPUTE_CONCURRENCY: int = Field(default=2, ge=1, le=64)
    """Model work (cache misses, similar movies, from-titles, predicted ratings) run at once per API
    process; the rest wait. It is CPU-bound and mostly holds the GIL, so more at once only thrash
    (on 2 cores, 16 concurrent misses: 117 req/s unbounded, 138 with 2)."""
    API_FAST_PATH: bool = True
    """Serve plainly valid `GET /v1/users/{id}/recommendations` requests of recently verified keys
    without routing and validation; false sends them through the framework like the others."""
    API_BACKGROUND_TASKS: bool = True
    """Run the model watcher and the exposure flusher in the API process (tests turn this off)."""

    @field_validator("API_CORS_ORIGINS", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # `API_CORS_ORIGINS=https://a.example,https://b.example` as well as a JSON list.
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    # Retraining worker
    RETRAIN_LOCK_TTL: timedelta = timedelta(minutes=5)
    """The retrain lock expires this long after its last refresh (refreshed every third of it)."""
    RETRAIN_SOFT_TIME_LIMIT: timedelta = timedelta(hours=2)
    """A retrain still running after this is stopped cleanly; nothing served changes."""
    RETRAIN_TIME_LIMIT: timedelta = timedelta(hours=2, minutes=10)
    """The worker child is killed after this (the hard limit)."""
    RETRAIN_EXPIRES: timedelta = timedelta(hours=6)
    """A scheduled retrain that could not start within this is dropped rather than run late."""

    HOLDOUT_SEED: int = 42
    """Seed of the holdout split; a fixed seed keeps a rating's side stable from one retrain to the next."""
    HOLDOUT_FRACTION: float = Field(default=0.2, gt=0, lt=1)

    GATE_MAX_RMSE_INCREASE: float = 0.005
    """A candidate whose RMSE exceeds the champion's (same holdout) by more than this is rejected."""
    GATE_MAX_NDCG_DECREASE: float = 0.005
    """A candidate whose NDCG@10 is below the champion's (same holdout) by more than this is rejected."""
    GATE_MAX_RMSE: float = 1.1
    """Absolute floor for a first champion: its RMSE must not exceed this."""
    GATE_MIN_NDCG: float = 0.01
    """Absolute floor for a first champion: its NDCG@10 must reach this."""

    PRECOMPUTE_CHUNK_USERS: int = Field(default=5_000, ge=1)
    """Users per precompute chunk; more users than one chunk are precomputed by a Celery chord."""
    PRECOMPUTE_STRATEGIES: tuple[str, ...] = ("hybrid", "svd")
    """Strategies whose top-N lists are precomputed for every user (the A/B arms; a strategy the
    model does not serve is skipped; empty: all of them). The API computes and caches any other
    strategy on demand."""

    MLFLOW_EXPERIMENT: str = "movierec"
    MLFLOW_MODEL_NAME: str = "movierec"

    @model_validator(mode="after")
    def _hard_limit_after_soft(self) -> Self:
        if self.RETRAIN_TIME_LIMIT <= self.RETRAIN_SOFT_TIME_LIMIT:
            raise ValueError("RETRAIN_TIME_LIMIT must be longer than RETRAIN_SOFT_TIME_LIMIT")
        return self

    @property
    def api_base_url(self) -> str:
        """Base URL of the REST API as seen from other local processes."""
        return self.API_URL or f"http://127.0.0.1:{self.API_PORT}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()
