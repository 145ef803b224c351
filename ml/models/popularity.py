"""Popularity: the same ranking for everyone, the baseline every model must beat and the fallback
for users the personalised models cannot score.

The score of a movie is `log1p(recent_count) + rating_weight * (bayesian_mean - global_mean)`:
`recent_count` counts its ratings with an exponential decay (a rating `half_life_days` older than
the newest rating counts half), and `bayesian_mean` is its mean rating shrunk towards the global
mean by `prior_count` pseudo-ratings, so a movie rated 5 once does not top the list.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from ml.models.base import (
    Catalog,
    FloatArray,
    IndexArray,
    ModelConfig,
    NotFittedError,
    Recommender,
    stopwatch,
)

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0


class PopularityConfig(ModelConfig):
    """Hyper-parameters of the popularity baseline."""

    half_life_days: float | None = Field(default=None, gt=0)
    """A rating this much older than the newest one counts half; None: no decay."""
    prior_count: float = Field(default=10.0, ge=0)
    """Pseudo-ratings at the global mean added to every movie's mean rating."""
    rating_weight: float = Field(default=0.0, ge=0)
    """Weight of the shrunk mean rating against log popularity (0: pure popularity)."""


def popularity_scores(
    item_index: NDArray[np.intp],
    ratings: NDArray[np.floating[Any]],
    timestamps: NDArray[np.int64] | None,
    n_items: int,
    config: PopularityConfig,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Popularity of every item from its ratings.

    Args:
        item_index: Item position of each rating.
        ratings: Rating values.
        timestamps: Unix seconds of each rating (needed only with a half-life).
        n_items: Number of items.
        config: Decay and shrinkage settings.

    Returns:
        The score, the (decayed) count and the Bayesian mean rating of every item.
    """
    weights = np.ones(len(item_index))
    if config.half_life_days is not None and timestamps is not None and len(timestamps):
        age_days = (timestamps.max() - timestamps) / SECONDS_PER_DAY
        weights = np.power(0.5, age_days / config.half_life_days)
    counts = np.bincount(item_index, weights=weights, minlength=n_items).astype(np.float64)
    raw_counts = np.bincount(item_index, minlength=n_items).astype(np.float64)
    sums = np.bincount(item_index, weights=ratings.astype(np.float64), minlength=n_items)
    global_mean = float(ratings.mean()) if len(ratings) else 0.0
    bayes = (sums + config.prior_count * global_mean) / np.maximum(raw_counts + config.prior_count, 1e-12)
    score = np.log1p(counts) + config.rating_weight * (bayes - global_mean)
    return score, counts, bayes


class PopularityRecommender(Recommender):
    """Most popular movies first, with optional recency decay and rating shrinkage."""

    name = "popularity"
    config_class = PopularityConfig
    scores_unknown_users = True

    def __init__(self, config: PopularityConfig | None = None) -> None:
        super().__init__(config)
        self.scores_: FloatArray | None = None
        self.counts_: FloatArray | None = None
        self.bayes_mean_: FloatArray | None = None

    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Count every movie's ratings (see `Recommender.fit`)."""
        with stopwatch("fitted popularity on %d ratings", len(ratings), log=logger):
            data = self._index(ratings, catalog)
            items = data.items.indices(ratings["movie_id"].to_numpy(dtype=np.int64))
            stamps = ratings["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in ratings else None
            self.scores_, self.counts_, self.bayes_mean_ = popularity_scores(
                items, ratings["rating"].to_numpy(dtype=np.float64), stamps, len(data.items), self.config
            )
        return self

    def _fitted(self) -> FloatArray:
        if self.scores_ is None:
            raise NotFittedError(self.name)
        return self.scores_

    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        return self._fitted()[items]

    def _similar_scores(self, item_index: int) -> FloatArray:
        # Popularity knows nothing about items besides their popularity: "similar" is "popular".
        return self._fitted().copy()

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        assert self.counts_ is not None and self.bayes_mean_ is not None
        return {}, {"scores": self._fitted(), "counts": self.counts_, "bayes_mean": self.bayes_mean_}

    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        self.scores_, self.counts_, self.bayes_mean_ = (
            arrays["scores"],
            arrays["counts"],
            arrays["bayes_mean"],
        )
