"""Content-based recommendations: a user's taste as the mean content vector of what they liked.

A thin model around `ml.content`: fitting builds the TF-IDF item features (genres, title words,
people, decade) of every catalog movie, rated or not; a user's profile weighs each rated movie by
its rating minus the user's mean rating (`liked_only`: only those above the mean), and movies are
ranked by cosine similarity to it. Weak as a ranker on MovieLens 100K (P@10 0.02: it favours
obscure movies that share genres and title words) but it is the only model that can recommend a
movie nobody has rated, and it explains itself.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from ml.content import ContentConfig, ItemFeatures, build_item_features, score_profile, user_profile
from ml.models.base import (
    Catalog,
    FloatArray,
    IndexArray,
    ModelConfig,
    ModelError,
    NotFittedError,
    Recommender,
    stopwatch,
)

logger = logging.getLogger(__name__)


class ContentModelConfig(ModelConfig):
    """Content features and how a user profile is built."""

    features: ContentConfig = Field(default_factory=ContentConfig)
    liked_only: bool = True
    """Profile from the movies rated above the user's mean only (else disliked ones push away)."""


def profile_weights(ratings: NDArray[np.floating[Any]], liked_only: bool) -> FloatArray:
    """Weight of each rated movie in a content profile: rating minus the user's mean.

    Args:
        ratings: The user's ratings.
        liked_only: Keep positive weights only.

    Returns:
        One weight per rating; if every rating equals the mean (a single rating, or "liked"
        movies given at sign-up), all ones.
    """
    values = np.asarray(ratings, dtype=np.float64)
    if len(values) == 0:
        return values
    weights = values - values.mean()
    if float(values.max() - values.min()) < 1e-6:
        return np.ones_like(values)
    return np.maximum(weights, 0.0) if liked_only else weights


class ContentRecommender(Recommender):
    """Cosine similarity of movies to the user's content profile (needs a catalog)."""

    name = "content"
    config_class = ContentModelConfig

    def __init__(self, config: ContentModelConfig | None = None) -> None:
        super().__init__(config)
        self.features_: ItemFeatures | None = None
        self._rows: NDArray[np.int64] | None = None  # item position -> feature row (-1)

    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Build the item features (see `Recommender.fit`).

        Raises:
            ModelError: If no catalog is given.
        """
        if catalog is None:
            raise ModelError("the content model needs a catalog (movies, genres, credits)")
        with stopwatch("fitted content on %d movies", len(catalog.movies), log=logger):
            self._index(ratings, catalog)
            self.features_ = build_item_features(
                catalog.movies, catalog.genres, catalog.credits, self.config.features
            )
            self._rows = self.features_.rows(self.item_ids)
        return self

    def _fitted(self) -> tuple[ItemFeatures, NDArray[np.int64]]:
        if self.features_ is None or self._rows is None:
            raise NotFittedError(self.name)
        return self.features_, self._rows

    def profile_scores(self, movie_ids: NDArray[np.int64], ratings: NDArray[np.floating[Any]]) -> FloatArray:
        """Cosine similarity of every known item to the profile of a history.

        Args:
            movie_ids: Rated movies.
            ratings: Their ratings.

        Returns:
            One score per item position; NaN for every item if the profile is empty.
        """
        features, rows = self._fitted()
        profile = user_profile(features, movie_ids, profile_weights(ratings, self.config.liked_only))
        scores = score_profile(features, profile).astype(np.float64)
        return np.where(rows >= 0, scores[np.maximum(rows, 0)], np.nan)

    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        history, values = self.data.history(user_index)
        return self.profile_scores(self.data.items.ids[history], values)[items]

    def _similar_scores(self, item_index: int) -> FloatArray:
        features, rows = self._fitted()
        if rows[item_index] < 0:
            return np.full(len(rows), np.nan)
        row = features.matrix[int(rows[item_index])]
        scores = np.asarray((features.matrix @ row.T).toarray()).ravel().astype(np.float64)
        return np.where(rows >= 0, scores[np.maximum(rows, 0)], np.nan)

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        features, _ = self._fitted()
        return {}, dict(features.to_arrays("content_"))

    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        self.features_ = ItemFeatures.from_arrays(arrays, "content_")
        self._rows = self.features_.rows(self.item_ids)
