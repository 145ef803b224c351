"""The quality gate: a candidate replaces the champion only if it is not worse on the same holdout.

Both models are scored on the candidate's holdout (the champion's holdout model is re-scored on it,
see `services.worker.training.score_holdout_model`), and the candidate is rejected if

* its RMSE exceeds the champion's by more than `GATE_MAX_RMSE_INCREASE`, or
* its NDCG@10 falls below the champion's by more than `GATE_MAX_NDCG_DECREASE`.

Without a champion (the first run, or a champion whose artifact is gone), the candidate must meet
the absolute floors `GATE_MAX_RMSE` and `GATE_MIN_NDCG`. A metric that is missing or not finite
fails the gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from db.models import ModelVersion
from services.settings import Settings
from services.worker.model_versions import ModelVersionRepository

RMSE_METRIC = "rmse"
"""Rating error of the served rating predictor on the holdout (lower is better)."""
NDCG_METRIC = "ndcg_at_10"
"""Ranking quality of the default served strategy on the holdout (higher is better)."""


@dataclass(frozen=True)
class GatePolicy:
    """Tolerances against the champion, and floors for a first champion."""

    max_rmse_increase: float = 0.005
    max_ndcg_decrease: float = 0.005
    max_rmse: float = 1.1
    min_ndcg: float = 0.01

    @classmethod
    def from_settings(cls, settings: Settings) -> GatePolicy:
        """The policy configured by the `GATE_*` settings."""
        return cls(
            max_rmse_increase=settings.GATE_MAX_RMSE_INCREASE,
            max_ndcg_decrease=settings.GATE_MAX_NDCG_DECREASE,
            max_rmse=settings.GATE_MAX_RMSE,
            min_ndcg=settings.GATE_MIN_NDCG,
        )


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why (the reason is stored on the version and the MLflow run)."""

    promote: bool
    reason: str
    candidate: Mapping[str, float]
    champion: Mapping[str, float] | None = None

    @property
    def status(self) -> str:
        """`passed` or `rejected`."""
        return "passed" if self.promote else "rejected"


def _metric(metrics: Mapping[str, float], name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if value is not None and math.isfinite(value) else None


def decide(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, policy: GatePolicy
) -> GateDecision:
    """Compare a candidate with the champion (both scored on the same holdout).

    Args:
        candidate: the candidate's holdout metrics, with `rmse` and `ndcg_at_10`.
        champion: the champion's metrics on the same holdout; None when there is no champion.
        policy: tolerances and floors.

    Returns:
        The decision and a one-line reason naming the numbers compared.
    """
    rmse, ndcg = _metric(candidate, RMSE_METRIC), _metric(candidate, NDCG_METRIC)
    if rmse is None or ndcg is None:
        return GateDecision(
            False, f"candidate has no finite {RMSE_METRIC} and {NDCG_METRIC}", candidate, champion
        )
    failures: list[str] = []
    if champion is None:
        if rmse > policy.max_rmse:
            failures.append(f"{RMSE_METRIC} {rmse:.4f} is above the floor {policy.max_rmse:.4f}")
        if ndcg < policy.min_ndcg:
            failures.append(f"{NDCG_METRIC} {ndcg:.4f} is below the floor {policy.min_ndcg:.4f}")
        if failures:
            return GateDecision(False, "first champion: " + "; ".join(failures), candidate, None)
        return GateDecision(
            True,
            f"first champion: {RMSE_METRIC} {rmse:.4f} <= {policy.max_rmse:.4f}, "
            f"{NDCG_METRIC} {ndcg:.4f} >= {policy.min_ndcg:.4f}",
            candidate,
            None,
        )
    old_rmse, old_ndcg = _metric(champion, RMSE_METRIC), _metric(champion, NDCG_METRIC)
    if old_rmse is not None and rmse > old_rmse + policy.max_rmse_increase:
        failures.append(
            f"{RMSE_METRIC} {rmse:.4f} vs champion {old_rmse:.4f} "
            f"(may rise by {policy.max_rmse_increase:g} at most)"
        )
    if old_ndcg is not None and ndcg < old_ndcg - policy.max_ndcg_decrease:
        failures.append(
            f"{NDCG_METRIC} {ndcg:.4f} vs champion {old_ndcg:.4f} "
            f"(may fall by {policy.max_ndcg_decrease:g} at most)"
        )
    if failures:
        return GateDecision(False, "worse than the champion: " + "; ".join(failures), candidate, champion)
    return GateDecision(
        True,
        f"not worse than the champion: {RMSE_METRIC} {rmse:.4f} vs {_fmt(old_rmse)}, "
        f"{NDCG_METRIC} {ndcg:.4f} vs {_fmt(old_ndcg)}",
        candidate,
        champion,
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def record_rejection(factory: sessionmaker[Session], *, name: str, version: int, reason: str) -> None:
    """Mark a registered version rejected, in its own transaction."""
    with factory.begin() as session:
        repo = ModelVersionRepository(session)
        row = repo.get_by_version(name, version)
        if row is None:
            raise LookupError(f"no model_version row for {name} v{version}")
        repo.reject(row, reason=reason)


def record_promotion(
    factory: sessionmaker[Session], *, name: str, version: int, reason: str | None = None
) -> ModelVersion | None:
    """Make a version the champion and archive the previous one, in one transaction.

    Returns:
        The previous champion (detached, archived), or None.
    """
    with factory.begin() as session:
        repo = ModelVersionRepository(session)
        row = repo.get_by_version(name, version)
        if row is None:
            raise LookupError(f"no model_version row for {name} v{version}")
        return repo.promote(row, at=datetime.now(UTC), reason=reason)
