"""What one API process holds for its lifetime: built in the lifespan, reached through `deps`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.api.metrics import Metrics
from services.api.redis_guard import RedisGuard
from services.settings import Settings

if TYPE_CHECKING:
    from services.api.auth.ratelimit import RateLimiter
    from services.api.auth.service import KeyCache
    from services.api.experiments.service import ExposureLog, RunningExperiments
    from services.api.movies.service import TitleSearch
    from services.api.recommendations.engine import ModelRegistry
    from services.api.recommendations.service import InvalidationQueue


@dataclass
class AppState:
    """The engine, session factory, Redis, loaded models and in-process caches of one API process."""

    settings: Settings
    engine: Engine | None
    session_factory: sessionmaker[Session]
    redis: RedisGuard
    metrics: Metrics
    models: ModelRegistry
    experiments: RunningExperiments
    exposures: ExposureLog
    keys: KeyCache
    limiter: RateLimiter
    invalidations: InvalidationQueue
    titles: TitleSearch
    redis_url: str
    compute_slots: asyncio.Semaphore
    """Lists computed at once on cache misses (`API_COMPUTE_CONCURRENCY`); the others wait their turn."""
    extras: dict[str, object] = field(default_factory=dict)
