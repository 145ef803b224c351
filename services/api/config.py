"""Settings of the REST API, on top of the ones every process shares.

These fields belong in `services.settings.Settings`; until they move there, the API reads them
through `ApiSettings`, which extends the shared class (same environment variables, same `.env`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from services.settings import Settings


class ApiSettings(Settings):
    """What the API needs besides the shared settings: keys, limits, timeouts, background work."""

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


@lru_cache
def get_api_settings() -> ApiSettings:
    """The process-wide API settings, read on first use."""
    return ApiSettings()
