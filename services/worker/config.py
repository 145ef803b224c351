"""Settings of the retraining worker, on top of the ones every process shares.

These fields belong in `services.settings.Settings`; until they move there, the worker reads them
through `WorkerSettings`, which extends the shared class (same environment variables, same `.env`).
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Self

from pydantic import Field, model_validator

from services.settings import Settings


class WorkerSettings(Settings):
    """What the worker needs besides the shared settings: locking, time limits, the gate, precompute."""

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


@lru_cache
def get_worker_settings() -> WorkerSettings:
    """The process-wide worker settings, read on first use."""
    return WorkerSettings()
