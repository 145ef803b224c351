"""The worker's only door into `ml/`: train a candidate, and score a holdout model for the gate.

A candidate is trained by `ml.artifact.train_all` on every rating, after a holdout evaluation made
here with the same `ml` functions `train_all` uses, so that the model fitted on the holdout's train
side can be kept: it is saved as a second serving artifact in `<artifact>/holdout/`.

Comparing on the same holdout: the split is a seeded hash of each (user, movie) pair
(`ml.evaluation.user_holdout`), so with a fixed `HOLDOUT_SEED` a rating stays on the same side from
one retrain to the next. The gate scores the candidate's holdout model and the champion's holdout
model on the candidate's test ratings, each user's request carrying the candidate's train ratings
as history (the champion folds in what it has not seen, exactly as at serving time). Neither model
was fitted on those test ratings, so the comparison is fair without retraining the champion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from db.extract import ratings_digest
from ml.artifact import (
    ServingModel,
    TrainConfig,
    dataset_digest,
    evaluate_holdout,
    flat_params,
    make_model_version,
    train_all,
)
from ml.datasets.base import Dataset
from ml.evaluation import Split, ranking_metrics, rating_metrics, relevant_items, user_holdout
from ml.models.base import Catalog
from ml.models.hybrid import HybridRecommender
from services.worker.gate import NDCG_METRIC, RMSE_METRIC

logger = logging.getLogger(__name__)

HOLDOUT_DIR = "holdout"
"""Sub-folder of an artifact holding the model fitted on the holdout's train side (for the gate)."""
GATE_K = 10

Progress = Callable[[str], None]


@dataclass(frozen=True)
class HoldoutInfo:
    """Which holdout a candidate was evaluated on (logged with the run)."""

    protocol: str
    seed: int
    fraction: float
    n_train: int
    n_test: int
    test_digest: str


@dataclass
class TrainedCandidate:
    """A trained, evaluated candidate whose serving artifact is written but not served."""

    model_version: str
    artifact_dir: Path
    metrics: dict[str, float]
    """Every holdout metric of `ml` (`hybrid.ndcg_at_10`, `svd.rmse`, ...) and the gate's (`gate.*`)."""
    gate_metrics: dict[str, float]
    """The metrics the gate compares (`rmse`, `ndcg_at_10`), from the holdout model."""
    params: dict[str, str]
    strategies: list[str]
    holdout: HoldoutInfo
    split: Split = field(repr=False)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def holdout_model_dir(self) -> Path:
        """The model fitted on the holdout's train side."""
        return self.artifact_dir / HOLDOUT_DIR


def train_config(
    overrides: Mapping[str, Any] | None = None, *, holdout_seed: int, fraction: float
) -> TrainConfig:
    """The training configuration: `ml` defaults, the holdout settings, then `overrides` (nested)."""
    base = TrainConfig().model_dump(mode="json")
    merged = _deep_merge(base, dict(overrides or {}))
    merged |= {"seed": holdout_seed, "test_fraction": fraction, "protocol": "user", "evaluate": False}
    return TrainConfig.model_validate(merged)


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def holdout_split(ratings: pd.DataFrame, *, seed: int, fraction: float) -> Split:
    """The gate's holdout: each user's ratings split by a seeded hash of the (user, movie) pair."""
    return user_holdout(ratings, test_fraction=fraction, seed=seed)


def _free_version(out_dir: Path, created: datetime, digest: str) -> tuple[datetime, str]:
    """A model version whose artifact folder does not exist yet (never overwrite a served artifact)."""
    version = make_model_version(created, digest)
    while (out_dir / version).exists():
        created += timedelta(seconds=1)
        version = make_model_version(created, digest)
    return created, version


def train_candidate(
    dataset: Dataset,
    holdout_seed: int,
    out_dir: Path,
    *,
    fraction: float = 0.2,
    overrides: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> TrainedCandidate:
    """Evaluate on the holdout, fit on everything and write the serving artifact under `out_dir`.

    Args:
        dataset: What the database holds.
        holdout_seed: Seed of the holdout split (fixed across retrains).
        out_dir: Folder of artifacts; the candidate goes to `out_dir/<model_version>/`.
        fraction: Share of each user's ratings held out.
        overrides: Nested changes to `ml.artifact.TrainConfig` (e.g. `{"hybrid": {"svd": {...}}}`).
        progress: Called with a stage name when a stage starts.

    Returns:
        The candidate, with its artifact and its holdout model written.
    """
    config = train_config(overrides, holdout_seed=holdout_seed, fraction=fraction)
    stages: dict[str, float] = {}
    created, version = _free_version(
        out_dir, datetime.now(UTC), dataset_digest(dataset.ratings, dataset.movies)
    )
    artifact = out_dir / version
    catalog = Catalog.from_dataset(dataset)

    if progress:
        progress("evaluate")
    started = time.perf_counter()
    split = holdout_split(dataset.ratings, seed=holdout_seed, fraction=fraction)
    held = HybridRecommender(config.hybrid).fit(split.train, catalog)
    metrics = evaluate_holdout(held, split.train, split.test, config.k, len(catalog.movie_ids))
    holdout_model = ServingModel.from_hybrid(
        held, catalog, {"model_version": f"{version}-holdout", "holdout": split.name, "seed": holdout_seed}
    )
    del held
    holdout_model.save(artifact / HOLDOUT_DIR)
    gate_metrics = score_holdout_model(holdout_model, split)
    del holdout_model
    stages["evaluate"] = time.perf_counter() - started

    if progress:
        progress("train")
    started = time.perf_counter()
    result = train_all(dataset, out_dir, config, created_at=created)
    stages["train"] = time.perf_counter() - started
    if result.artifact_path != artifact:
        raise RuntimeError(f"ml wrote the artifact to {result.artifact_path}, expected {artifact}")
    metrics |= result.metrics
    metrics |= {f"gate.{name}": value for name, value in gate_metrics.items()}
    holdout = HoldoutInfo(
        protocol=split.name,
        seed=holdout_seed,
        fraction=fraction,
        n_train=len(split.train),
        n_test=len(split.test),
        test_digest=ratings_digest(split.test),
    )
    logger.info(
        "trained candidate %s: gate %s in evaluate=%.1fs train=%.1fs",
        version,
        {k: round(v, 4) for k, v in gate_metrics.items()},
        stages["evaluate"],
        stages["train"],
    )
    return TrainedCandidate(
        model_version=version,
        artifact_dir=artifact,
        metrics=metrics,
        gate_metrics=gate_metrics,
        params=flat_params(config),
        strategies=result.serving.strategies,
        holdout=holdout,
        split=split,
        stage_seconds=stages,
    )


def score_holdout_model(model: ServingModel | Path, split: Split, k: int = GATE_K) -> dict[str, float]:
    """The gate metrics of a holdout model on `split.test`, users' histories taken from `split.train`.

    Args:
        model: A serving model (or its folder) fitted on some holdout's train side.
        split: The holdout to score on.
        k: List length for NDCG.

    Returns:
        `rmse` of the served rating prediction and `ndcg_at_10` of the default strategy.
    """
    serving = model if isinstance(model, ServingModel) else ServingModel.load(model)
    scorer = serving.scorer
    histories = _by_user(split.train)
    tests = _by_user(split.test)
    relevant = relevant_items(split.test)
    users = list(relevant)
    lists: list[np.ndarray[Any, Any]] = []
    truth: list[np.ndarray[Any, Any]] = []
    predicted: list[np.ndarray[Any, Any]] = []
    for user in users:
        movie_ids, ratings = histories.get(user, (np.empty(0, np.int64), np.empty(0, np.float32)))
        history = list(zip(movie_ids.tolist(), ratings.tolist(), strict=True))
        state = scorer.state(user, history)
        test_movies, test_ratings = tests[user]
        truth.append(test_ratings)
        if state is None:
            lists.append(np.empty(0, np.int64))
            predicted.append(np.full(len(test_movies), np.nan))
            continue
        ranked = scorer.rank(state, k, strategy=serving.default_strategy)
        lists.append(scorer.items.ids[ranked.items])
        items = scorer.items.indices(test_movies)
        known = items >= 0
        values = np.full(len(test_movies), np.nan)
        if known.any():
            values[known] = scorer.predict_ratings(state, items[known])
        predicted.append(values)
    ranking = ranking_metrics(lists, [relevant[u] for u in users], k=k, n_items=scorer.n_items)
    rating = rating_metrics(np.concatenate(truth), np.concatenate(predicted))
    return {
        RMSE_METRIC: rating["rmse"],
        NDCG_METRIC: ranking["ndcg"],
        "rating_coverage": rating["coverage"],
        "precision_at_10": ranking["precision"],
        "recall_at_10": ranking["recall"],
    }


def _by_user(ratings: pd.DataFrame) -> dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Each user's (movie ids, ratings), as arrays."""
    users = ratings["user_id"].to_numpy(np.int64)
    order = np.argsort(users, kind="stable")
    users = users[order]
    movies = ratings["movie_id"].to_numpy(np.int64)[order]
    values = ratings["rating"].to_numpy(np.float32)[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.empty(0, np.intp)
    ends = np.r_[starts[1:], len(users)]
    return {int(users[s]): (movies[s:e], values[s:e]) for s, e in zip(starts, ends, strict=True)}


def load_serving_model(path: Path) -> ServingModel:
    """Load a serving artifact."""
    return ServingModel.load(path)
