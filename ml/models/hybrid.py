"""The served default: a hybrid of EASE, ALS, item kNN, SVD, content and popularity.

Ranking happens in two stages, both plain numpy so that the serving artifact runs the very same
code as the in-memory model:

1. **Candidates.** The top `pool_size` movies by EASE, by rating-weighted EASE and by ALS, plus the top `content_pool`
   by content similarity (any movie) and `cold_pool` among movies nobody has rated yet (only
   content can score those).
2. **Re-ranking.** Each candidate gets features: every component's score standardised over the
   user's candidates (so users with long and short histories are comparable), EASE once more with
   the history weighted by rating (a 2-star movie supports its neighbours less than a 5-star
   one), SVD's predicted rating, the movie's (shrunk) share of ratings reaching the threshold,
   log popularity, whether nobody rated the movie in training (its collaborative features are
   then the candidates' average), and a few products with the user's activity. A logistic regression
   on those features, fitted on a validation split carved from the training ratings (label: the
   held-out rating reaches `relevance_threshold`), gives the final score; its weights are then
   refined by coordinate ascent on nDCG@10 of the same validation users plus a small bonus for
   the share of the catalog their lists cover (`coverage_weight`).

The components are then refitted on all the training ratings, and the learned weights carried
over. Features are standardised per user, so they keep their meaning across the two fits.

`strategy` picks other rankings from the same parts: "svd" (by predicted rating, the A/B
control), "ease", "als", "knn", "content", "popularity", or a dict of weights over the
standardised component scores.

Each recommendation carries an explanation from the component that contributed most to its
score: the rated movie with the largest EASE / kNN weight towards it ("because you rated Heat
5 stars"), the content reasons shared with the closest liked movie ("same director as Heat"),
"popular with people like you" (ALS), the predicted rating (SVD) or popularity.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import Field

from ml.coldstart import fold_in_biased, fold_in_implicit
from ml.content import ItemFeatures, shared_reasons
from ml.evaluation.splitting import validation_split
from ml.models.als import ALSConfig, ALSRecommender, history_confidence
from ml.models.base import (
    Catalog,
    FloatArray,
    IdIndex,
    IndexArray,
    Interactions,
    ModelConfig,
    ModelError,
    NotFittedError,
    Recommendations,
    Recommender,
    rows_by_user,
    stopwatch,
    top_k_indices,
)
from ml.models.blend import KNNBaselineArrays
from ml.models.content import ContentModelConfig, ContentRecommender, profile_weights
from ml.models.ease import EASEConfig, EASERecommender
from ml.models.knn import ItemKNNConfig, ItemKNNRecommender
from ml.models.neighbours import ItemItem, top_k_products
from ml.models.popularity import PopularityConfig, PopularityRecommender
from ml.models.surprise_models import SurpriseConfig, SurpriseRecommender
from ml.models.svd import SVDConfig, SVDRecommender

logger = logging.getLogger(__name__)

COMPONENTS = ("ease", "als", "knn", "svd", "content", "popularity")
Component = Literal["ease", "als", "knn", "svd", "content", "popularity"]
Strategy = str | Mapping[str, float]
STRATEGIES = ("hybrid", *COMPONENTS)

# Per-candidate feature columns; products are (left, right) of two base columns.
BASE_FEATURES = (
    "ease",
    "ease_rated",
    "als",
    "knn",
    "content",
    "svd",
    "rating",
    "liked",
    "popularity",
    "activity",
    "cold",
)
# Scores standardised over the user's candidates (the others keep their scale).
STANDARDISED = ("ease", "ease_rated", "als", "knn", "content", "svd")
PRODUCT_FEATURES = (
    ("ease", "activity"),
    ("als", "activity"),
    ("rating", "activity"),
    ("popularity", "activity"),
    ("ease", "rating"),
    ("als", "rating"),
    ("ease", "ease"),
    ("rating", "rating"),
    ("liked", "ease"),
    ("liked", "als"),
)
# Which component a feature's contribution is credited to in explanations.
FEATURE_GROUP = {
    "ease": "ease",
    "ease_rated": "ease",
    "liked": "svd",
    "knn": "knn",
    "als": "als",
    "content": "content",
    "svd": "svd",
    "rating": "svd",
    "popularity": "popularity",
    "activity": "popularity",
    "cold": "content",
}


class HybridConfig(ModelConfig):
    """Components of the hybrid, candidate pool sizes and how the re-ranker is fitted."""

    ease: EASEConfig = Field(default_factory=EASEConfig)
    als: ALSConfig = Field(default_factory=ALSConfig)
    knn: ItemKNNConfig = Field(default_factory=ItemKNNConfig)
    svd: SVDConfig = Field(default_factory=SVDConfig)
    content: ContentModelConfig = Field(default_factory=ContentModelConfig)
    popularity: PopularityConfig = Field(default_factory=PopularityConfig)
    rating_knn: SurpriseConfig | None = Field(
        default_factory=lambda: SurpriseConfig(algorithm="knn_baseline")
    )
    """Item-based KNNBaseline blended with SVD for `predict_rating`; None: SVD alone."""
    max_rating_knn_items: int = Field(default=5_000, ge=2)
    """Above this many rated movies the rating kNN is skipped (its similarities are items^2)."""
    use_content: bool = True
    """Content needs a catalog with genres or credits; without one it is left out anyway."""
    content_neighbours: int = Field(default=200, ge=1)
    """Content similarities kept per movie above `ease.max_dense_items` movies."""
    pool_size: int = Field(default=100, ge=1)
    """Candidates taken from each of EASE and ALS."""
    content_pool: int = Field(default=30, ge=0)
    cold_pool: int = Field(default=10, ge=0)
    """Candidates among movies without ratings, by content."""
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    validation_protocol: Literal["user", "temporal"] = "user"
    """How the validation ratings are carved from train: random per user, or each user's latest
    (match the evaluation protocol: a temporal test wants a temporal validation)."""
    relevance_threshold: float = 4.0
    max_validation_users: int = Field(default=3_000, ge=10)
    l2: float = Field(default=1.0, ge=0)
    refine_rounds: int = Field(default=2, ge=0)
    """Rounds of nDCG coordinate ascent over the logistic weights (0: keep them)."""
    coverage_weight: float = Field(default=0.1, ge=0)
    """The refinement maximises `nDCG@10 + coverage_weight * coverage` of the validation lists:
    among weightings of nearly equal accuracy it takes the one showing more of the catalog."""
    liked_prior: float = Field(default=10.0, ge=0)
    """Pseudo-ratings (at the global share) added to each movie's share of ratings >= threshold."""
    seed: int = 42


@dataclass
class UserState:
    """What the scorer knows about one user for one request."""

    items: IndexArray
    ratings: NDArray[np.float32]
    user_index: int = -1
    """Stored training user whose fitted vectors are used; -1 when folded in."""
    als: FloatArray | None = None
    svd_bias: float = 0.0
    svd: FloatArray | None = None
    knn_bias: float = 0.0
    liked_only: bool = False
    """The history lists liked movies rather than real ratings (explanations say "liked")."""


@dataclass
class RankedItems:
    """Positions, scores and (for the hybrid) per-feature values of a ranking."""

    items: IndexArray
    scores: FloatArray
    strategy: str
    features: FloatArray | None = None


@dataclass(frozen=True)
class Explanation:
    """Why a movie is recommended: a short sentence, its kind and the movie it refers to."""

    kind: Literal["rated", "content", "similar_users", "predicted_rating", "popular"]
    text: str
    movie_id: int | None = None


_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<article>The|A|An|Les|Le|La|L'|Il|Das|Der|Die|El)(?P<tail> \(.*\))?$"
)


def display_title(title: str) -> str:
    """A catalog title as people write it: "Shawshank Redemption, The" -> "The Shawshank Redemption"."""
    match = _TRAILING_ARTICLE.match(title)
    if match is None:
        return title
    article = match["article"]
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match['rest']}{match['tail'] or ''}"


def rated_weights(ratings: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """Weight of each rated movie in rating-weighted EASE: 0 at 2 stars or less, 1 at 5."""
    return np.clip((np.asarray(ratings, dtype=np.float32) - 2.0) / 3.0, 0.0, 1.0)


def _star_text(rating: float) -> str:
    value = f"{rating:g}"
    return f"{value} star" if value == "1" else f"{value} stars"


@dataclass
class HybridScorer:
    """Every fitted array of the hybrid, and the numpy code that ranks with them."""

    items: IdIndex
    history: Interactions
    titles: NDArray[np.str_]
    global_mean: float
    rating_scale: tuple[float, float]
    popularity: FloatArray
    popularity_z: FloatArray
    activity_mean: float
    liked_share: FloatArray | None = None
    ease: ItemItem | None = None
    ease_covered: NDArray[np.bool_] | None = None
    knn: ItemItem | None = None
    knn_covered: NDArray[np.bool_] | None = None
    content: ItemItem | None = None
    content_known: NDArray[np.bool_] | None = None
    features: ItemFeatures | None = None
    als_users: NDArray[np.float32] | None = None
    als_items: NDArray[np.float32] | None = None
    als_covered: NDArray[np.bool_] | None = None
    als_config: ALSConfig = field(default_factory=ALSConfig)
    svd_user_bias: NDArray[np.float32] | None = None
    svd_item_bias: NDArray[np.float32] | None = None
    svd_users: NDArray[np.float32] | None = None
    svd_items: NDArray[np.float32] | None = None
    svd_covered: NDArray[np.bool_] | None = None
    svd_reg: float = 0.1
    rating_knn: KNNBaselineArrays | None = None
    rating_weights: FloatArray | None = None
    feature_names: tuple[str, ...] = ()
    weights: FloatArray | None = None
    intercept: float = 0.0
    pool_size: int = 100
    content_pool: int = 30
    cold_pool: int = 10
    _als_gram: FloatArray | None = field(default=None, repr=False)
    _cold: NDArray[np.bool_] | None = field(default=None, repr=False)
    _uncovered: dict[int, IndexArray] = field(default_factory=dict, repr=False)

    # -- users -------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        """Number of catalog items."""
        return len(self.items)

    def components(self) -> list[str]:
        """Components present in this scorer."""
        present = {
            "ease": self.ease is not None,
            "als": self.als_items is not None,
            "knn": self.knn is not None,
            "svd": self.svd_items is not None,
            "content": self.content is not None,
            "popularity": True,
        }
        return [name for name in COMPONENTS if present[name]]

    def state_for_user(self, user_index: int) -> UserState:
        """A training user's state: stored history and fitted vectors."""
        items, ratings = self.history.history(user_index)
        return UserState(
            items=items,
            ratings=ratings,
            user_index=user_index,
            als=None if self.als_users is None else self.als_users[user_index].astype(np.float64),
            svd_bias=0.0 if self.svd_user_bias is None else float(self.svd_user_bias[user_index]),
            svd=None if self.svd_users is None else self.svd_users[user_index].astype(np.float64),
            knn_bias=0.0 if self.rating_knn is None else float(self.rating_knn.user_bias[user_index]),
        )

    def state_from_history(
        self, movie_ids: NDArray[np.int64], ratings: NDArray[np.floating[Any]], *, liked_only: bool = False
    ) -> UserState:
        """Fold a history into every component (see `ml.coldstart`); unknown movies are ignored."""
        idx = self.items.indices(movie_ids)
        ok = idx >= 0
        items = idx[ok]
        values = np.asarray(ratings, dtype=np.float32)[ok]
        order = np.argsort(items)
        items, values = items[order], values[order]
        state = UserState(items=items, ratings=values, liked_only=liked_only)
        if self.als_items is not None and self.als_covered is not None:
            covered = self.als_covered[items]
            state.als = fold_in_implicit(
                history_confidence(values[covered], self.als_config),
                self.als_items[items[covered]],
                self.als_gram(),
                self.als_config.regularization,
            )
        if self.svd_items is not None and self.svd_covered is not None and self.svd_item_bias is not None:
            covered = self.svd_covered[items]
            state.svd_bias, state.svd = fold_in_biased(
                values[covered],
                self.svd_items[items[covered]].astype(np.float64),
                self.svd_item_bias[items[covered]].astype(np.float64),
                self.global_mean,
                self.svd_reg,
            )
        if self.rating_knn is not None:
            state.knn_bias = self.rating_knn.fold_in_bias(items, values)
        return state

    def state(
        self,
        user_id: int | None,
        history: Sequence[tuple[int, float]] | None = None,
        *,
        liked_only: bool = False,
    ) -> UserState | None:
        """The state for a request: stored when the history is absent or unchanged, else folded in.

        Args:
            user_id: The user, None for an anonymous request.
            history: (movie_id, rating) pairs replacing the stored history.
            liked_only: The history names liked movies rather than ratings.

        Returns:
            None for an unknown user without history (or with an empty one).
        """
        user = -1 if user_id is None else self.history.users.index(user_id)
        if history is None:
            return self.state_for_user(user) if user >= 0 else None
        from ml.coldstart import normalise_history

        movie_ids, ratings = normalise_history(history)
        if user >= 0 and not liked_only:
            stored_items, stored_ratings = self.history.history(user)
            idx = self.items.indices(movie_ids)
            order = np.argsort(idx)
            if np.array_equal(idx[order], stored_items) and np.allclose(ratings[order], stored_ratings):
                return self.state_for_user(user)
        if len(movie_ids) == 0:
            return None
        return self.state_from_history(movie_ids, ratings, liked_only=liked_only)

    def als_gram(self) -> FloatArray:
        """`Y^T Y` of the ALS item factors (cached)."""
        if self._als_gram is None:
            assert self.als_items is not None
            factors = self.als_items.astype(np.float64)
            self._als_gram = factors.T @ factors
        return self._als_gram

    def cold_items(self) -> NDArray[np.bool_]:
        """Items no collaborative component covers (no training ratings)."""
        if self._cold is None:
            covered = np.zeros(self.n_items, dtype=bool)
            for mask in (self.ease_covered, self.als_covered, self.knn_covered, self.svd_covered):
                if mask is not None:
                    covered |= mask
            self._cold = ~covered
        return self._cold

    # -- component scores over every item ------------------------------------------------------
    def component_scores(self, state: UserState, name: str) -> FloatArray:
        """One component's score of every item for a user (NaN where it cannot score).

        Raises:
            ModelError: If the component is not part of this scorer.
        """
        if name not in self.components():
            raise ModelError(f"component {name!r} is not in this model; available: {self.components()}")
        if name == "popularity":
            return self.popularity
        if name == "ease":
            assert self.ease is not None and self.ease_covered is not None
            if len(state.items) == 0:
                return np.full(self.n_items, np.nan)
            return self._mask(self.ease.scores(state.items), self.ease_covered)
        if name == "knn":
            assert self.knn is not None and self.knn_covered is not None
            if len(state.items) == 0:
                return np.full(self.n_items, np.nan)
            return self._mask(self.knn.scores(state.items), self.knn_covered)
        if name == "als":
            assert self.als_items is not None and self.als_covered is not None
            if state.als is None or not np.any(state.als):
                return np.full(self.n_items, np.nan)
            scores = (self.als_items @ state.als.astype(np.float32)).astype(np.float64)
            return self._mask(scores, self.als_covered)
        if name == "svd":
            return self.svd_scores(state, None)
        assert self.content is not None and self.content_known is not None
        weights = profile_weights(state.ratings, liked_only=True)
        if len(state.items) == 0 or not np.any(weights > 0):
            return np.full(self.n_items, np.nan)
        keep = weights > 0
        return self._mask(self.content.scores(state.items[keep], weights[keep]), self.content_known)

    def _mask(self, scores: FloatArray, covered: NDArray[np.bool_]) -> FloatArray:
        """NaN where a component does not cover an item (in place; the uncovered list is cached)."""
        key = id(covered)
        uncovered = self._uncovered.get(key)
        if uncovered is None:
            uncovered = self._uncovered[key] = np.flatnonzero(~covered)
        scores[uncovered] = np.nan
        return scores

    def svd_scores(self, state: UserState, items: IndexArray | None) -> FloatArray:
        """SVD predicted ratings (unclipped); movies SVD has no factors for get `mu + b_u`."""
        assert self.svd_items is not None and self.svd_item_bias is not None and self.svd_covered is not None
        if state.svd is None:
            size = self.n_items if items is None else len(items)
            return np.full(size, np.nan)
        q = self.svd_items if items is None else self.svd_items[items]
        bi = self.svd_item_bias if items is None else self.svd_item_bias[items]
        scores = (q @ state.svd.astype(np.float32) + bi).astype(np.float64)
        if items is None:
            uncovered = self._uncovered.get(id(self.svd_covered))
            if uncovered is None:
                uncovered = self._uncovered[id(self.svd_covered)] = np.flatnonzero(~self.svd_covered)
            scores[uncovered] = 0.0
        else:
            scores[~self.svd_covered[items]] = 0.0
        scores += self.global_mean + state.svd_bias
        return scores

    def predict_ratings(self, state: UserState, items: IndexArray) -> FloatArray:
        """Best rating predictions (SVD + KNNBaseline blend, else SVD), clipped to the scale.

        NaN for movies without training ratings.
        """
        if self.svd_items is None or self.svd_covered is None or state.svd is None:
            return np.full(len(items), np.nan)
        svd = self.svd_scores(state, items)
        if self.rating_knn is not None and self.rating_weights is not None:
            knn = self.rating_knn.predict(state.knn_bias, state.items, state.ratings, items)
            w = self.rating_weights
            value = w[0] + w[1] * svd + w[2] * np.where(np.isfinite(knn), knn, svd)
        else:
            value = svd
        value = np.where(self.svd_covered[items], value, np.nan)
        return np.clip(value, *self.rating_scale)

    # -- the hybrid ----------------------------------------------------------------------------
    def _full_vectors(self, state: UserState) -> dict[str, FloatArray]:
        # kNN only scores the candidates (see `_raw_features`); the others also pick them.
        full: dict[str, FloatArray] = {
            name: self.component_scores(state, name)
            for name in ("ease", "als", "content")
            if name in self.components()
        }
        if self.ease is not None and self.ease_covered is not None and len(state.items):
            scores = self.ease.scores(state.items, rated_weights(state.ratings))
            full["ease_rated"] = self._mask(scores, self.ease_covered)
        return full

    def candidate_pool(
        self, state: UserState, full: Mapping[str, FloatArray], blocked: NDArray[np.bool_] | None
    ) -> IndexArray:
        """Candidate positions for the re-ranker (see the module docstring)."""
        picks: list[IndexArray] = []

        def take(scores: FloatArray, k: int, mask: NDArray[np.bool_] | None = None) -> None:
            values = scores.copy()
            if blocked is not None:
                values[blocked] = np.nan
            if mask is not None:
                values[~mask] = np.nan
            picks.append(top_k_indices(values, k, in_place=True))

        for name in ("ease", "ease_rated", "als"):
            if name in full:
                take(full[name], self.pool_size)
        if "content" in full:
            take(full["content"], self.content_pool)
            cold = self.cold_items()
            if self.cold_pool and cold.any():
                take(full["content"], self.cold_pool, cold)
        if not any(len(p) for p in picks):
            take(self.popularity, self.pool_size)
        return np.unique(np.concatenate(picks))

    def _raw_features(
        self, state: UserState, items: IndexArray, full: Mapping[str, FloatArray]
    ) -> FloatArray:
        """Unstandardised base columns for `items` (NaN where a component cannot score)."""
        n = len(items)
        out = np.full((n, len(BASE_FEATURES)), np.nan)
        for col, name in enumerate(BASE_FEATURES):
            if name in full:
                out[:, col] = full[name][items]
            elif name == "knn" and self.knn is not None and self.knn_covered is not None:
                knn = self.knn.scores_for(state.items, items)
                out[:, col] = np.where(self.knn_covered[items], knn, np.nan) if len(state.items) else np.nan
            elif name == "svd" and self.svd_items is not None:
                out[:, col] = self.svd_scores(state, items)
            elif name == "rating" and self.svd_items is not None:
                out[:, col] = self.svd_scores(state, items) - self.global_mean
            elif name == "liked" and self.liked_share is not None:
                out[:, col] = self.liked_share[items]
            elif name == "popularity":
                out[:, col] = self.popularity_z[items]
            elif name == "activity":
                out[:, col] = np.log1p(len(state.items)) - self.activity_mean
            elif name == "cold":
                # Nobody rated it in training: the collaborative features are imputed, say so.
                out[:, col] = self.cold_items()[items].astype(np.float64)
        return out

    def feature_matrix(
        self, state: UserState, items: IndexArray, full: Mapping[str, FloatArray], pool: IndexArray
    ) -> FloatArray:
        """Re-ranker features of `items`, components standardised over the user's `pool`."""
        raw = self._raw_features(state, items, full)
        reference = self._raw_features(state, pool, full) if pool is not items else raw
        columns: dict[str, FloatArray] = {}
        for col, name in enumerate(BASE_FEATURES):
            values = raw[:, col]
            if name in STANDARDISED:
                ref = reference[:, col]
                ref = ref[np.isfinite(ref)]
                if len(ref) > 1 and ref.std() > 1e-12:
                    values = (values - ref.mean()) / ref.std()
                else:
                    values = np.where(np.isfinite(values), 0.0, np.nan)
            # A component that cannot score a movie says nothing about it: the pool average.
            columns[name] = np.nan_to_num(values, nan=0.0)
        for left, right in PRODUCT_FEATURES:
            columns[f"{left}*{right}"] = columns[left] * columns[right]
        names = self.feature_names or tuple(columns)
        return np.column_stack([columns[name] for name in names])

    def all_feature_names(self) -> tuple[str, ...]:
        """Every feature column the re-ranker can use, in order."""
        return (*BASE_FEATURES, *(f"{left}*{right}" for left, right in PRODUCT_FEATURES))

    def rank(
        self,
        state: UserState,
        k: int,
        *,
        exclude_seen: bool = True,
        allowed: NDArray[np.bool_] | None = None,
        strategy: Strategy = "hybrid",
    ) -> RankedItems:
        """Top-k positions for a user.

        Args:
            state: The user's state.
            k: Length of the list.
            exclude_seen: Leave out the movies of the state's history.
            allowed: Only movies where this mask is True (a genre filter, say).
            strategy: "hybrid", a component name, or weights over component names.

        Returns:
            Ranked positions and scores; with "hybrid", the feature rows of the ranked movies.

        Raises:
            ModelError: An unknown strategy or component.
        """
        blocked = np.zeros(self.n_items, dtype=bool)
        if exclude_seen:
            blocked[state.items] = True
        if allowed is not None:
            blocked |= ~allowed
        if isinstance(strategy, Mapping):
            scores = self.blend_scores(state, strategy, blocked)
            top = top_k_indices(scores, k)
            return RankedItems(top, scores[top], "weights")
        if strategy != "hybrid":
            if strategy not in STRATEGIES:
                raise ModelError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES} or a dict")
            scores = np.where(blocked, np.nan, self.component_scores(state, strategy))
            top = top_k_indices(scores, k)
            return RankedItems(top, scores[top], strategy)
        full = self._full_vectors(state)
        pool = self.candidate_pool(state, full, blocked)
        if k > len(pool):
            pool = np.flatnonzero(~blocked).astype(np.intp)
        matrix = self.feature_matrix(state, pool, full, pool)
        scores = self._linear(matrix)
        top = top_k_indices(scores, k)
        return RankedItems(pool[top], scores[top], "hybrid", matrix[top])

    def score_items(self, state: UserState, items: IndexArray) -> FloatArray:
        """Hybrid scores of given positions, standardised over the user's usual pool."""
        full = self._full_vectors(state)
        blocked = np.zeros(self.n_items, dtype=bool)
        blocked[state.items] = True
        pool = self.candidate_pool(state, full, blocked)
        return self._linear(self.feature_matrix(state, items, full, pool))

    def _linear(self, matrix: FloatArray) -> FloatArray:
        if self.weights is None:
            raise NotFittedError("hybrid")
        return np.asarray(matrix @ self.weights + self.intercept, dtype=np.float64)

    def blend_scores(
        self, state: UserState, weights: Mapping[str, float], blocked: NDArray[np.bool_]
    ) -> FloatArray:
        """Weighted sum of standardised component scores over the unblocked movies.

        Raises:
            ModelError: If a weight names an unknown component.
        """
        total = np.zeros(self.n_items)
        usable = False
        for name, weight in weights.items():
            if weight == 0:
                continue
            scores = np.where(blocked, np.nan, self.component_scores(state, name))
            finite = np.isfinite(scores)
            if finite.sum() < 2 or scores[finite].std() < 1e-12:
                continue
            usable = True
            z = (scores - scores[finite].mean()) / scores[finite].std()
            total += weight * np.nan_to_num(z, nan=float(np.nanmin(z)))
        if not usable:
            return np.where(blocked, np.nan, self.popularity)
        return np.where(blocked, np.nan, total)

    # -- explanations --------------------------------------------------------------------------
    def explain(self, state: UserState, ranked: RankedItems) -> list[Explanation]:
        """One explanation per ranked movie, from the component that contributed most to it.

        Collaborative parts name the liked movie with the largest EASE (else kNN) weight towards
        the recommendation ("because you rated Heat 5 stars"), or say "popular with people like
        you" when no single movie supports it; content names what it shares with the closest
        liked movie; SVD gives the predicted rating; popularity says so.
        """
        groups = self._main_groups(ranked)
        support = _Support(self, state, ranked.items)
        predicted = self._predicted_for(state, ranked.items, groups)
        out = []
        for column, group in enumerate(groups):
            found = None
            if group == "content":
                found = support.content(column)
            if found is None and group in ("ease", "knn", "als", "content") and len(state.items):
                found = support.rated(column) or (support.content(column) if group != "content" else None)
                found = found or Explanation("similar_users", "popular with people like you")
            if found is None and column in predicted and np.isfinite(predicted[column]):
                found = Explanation(
                    "predicted_rating", f"we think you'd rate it {predicted[column]:.1f} stars"
                )
            out.append(found or Explanation("popular", "popular with everyone"))
        return out

    def _predicted_for(self, state: UserState, items: IndexArray, groups: list[str]) -> dict[int, float]:
        """Predicted ratings of the movies SVD explains, by column, in one call."""
        columns = [column for column, group in enumerate(groups) if group == "svd"]
        if not columns or state.svd is None:
            return {}
        values = self.predict_ratings(state, np.asarray(items, dtype=np.intp)[columns])
        return {column: float(value) for column, value in zip(columns, values, strict=True)}

    def _main_groups(self, ranked: RankedItems) -> list[str]:
        n = len(ranked.items)
        if ranked.strategy in COMPONENTS:
            return [ranked.strategy] * n
        if ranked.features is None or self.weights is None:
            return ["ease" if self.ease is not None else "popularity"] * n
        names = sorted({FEATURE_GROUP[f.split("*")[0]] for f in self.feature_names})
        membership = np.zeros((len(self.feature_names), len(names)))
        for row, feature in enumerate(self.feature_names):
            # The user's activity is the same for every movie: it explains none of them.
            if feature != "activity":
                membership[row, names.index(FEATURE_GROUP[feature.split("*")[0]])] = 1.0
        contributions = (ranked.features * self.weights) @ membership
        return [names[j] for j in np.argmax(contributions, axis=1)]

    def _content_reason(self, item: int, source: int) -> str:
        title = display_title(str(self.titles[source]))
        if self.features is not None:
            a, b = int(self.items.ids[item]), int(self.items.ids[source])
            if a in self.features and b in self.features:
                reasons = shared_reasons(self.features, a, b, titles={b: title})
                if reasons:
                    return reasons[0]
        return f"similar to {title}"

    # -- persistence ---------------------------------------------------------------------------
    def to_arrays(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """JSON scalars and float32 arrays for `from_arrays` (the serving artifact's content)."""
        arrays: dict[str, NDArray[Any]] = {
            **self.history.to_arrays("history_"),
            "item_ids": self.items.ids,
            "titles": self.titles,
            "popularity": self.popularity.astype(np.float32),
            "popularity_z": self.popularity_z.astype(np.float32),
        }
        if self.liked_share is not None:
            arrays["liked_share"] = self.liked_share.astype(np.float32)
        if self.ease is not None and self.ease_covered is not None:
            arrays |= {**self.ease.to_arrays("ease_"), "ease_covered": self.ease_covered}
        if self.knn is not None and self.knn_covered is not None:
            arrays |= {**self.knn.to_arrays("knn_"), "knn_covered": self.knn_covered}
        if self.content is not None and self.content_known is not None:
            arrays |= {**self.content.to_arrays("content_sim_"), "content_known": self.content_known}
        if self.features is not None:
            arrays |= self.features.to_arrays("content_features_")
        if self.als_users is not None and self.als_items is not None and self.als_covered is not None:
            arrays |= {
                "als_users": self.als_users,
                "als_items": self.als_items,
                "als_covered": self.als_covered,
            }
        if self.svd_items is not None:
            assert self.svd_users is not None and self.svd_user_bias is not None
            assert self.svd_item_bias is not None and self.svd_covered is not None
            arrays |= {
                "svd_users": self.svd_users,
                "svd_items": self.svd_items,
                "svd_user_bias": self.svd_user_bias,
                "svd_item_bias": self.svd_item_bias,
                "svd_covered": self.svd_covered,
            }
        if self.rating_knn is not None:
            arrays |= self.rating_knn.to_arrays("rating_knn_")
        scalars = {
            "global_mean": self.global_mean,
            "rating_scale": list(self.rating_scale),
            "activity_mean": self.activity_mean,
            "als_config": self.als_config.model_dump(mode="json"),
            "svd_reg": self.svd_reg,
            "rating_weights": None if self.rating_weights is None else self.rating_weights.tolist(),
            "feature_names": list(self.feature_names),
            "weights": None if self.weights is None else self.weights.tolist(),
            "intercept": self.intercept,
            "pool_size": self.pool_size,
            "content_pool": self.content_pool,
            "cold_pool": self.cold_pool,
        }
        return scalars, arrays

    @classmethod
    def from_arrays(cls, scalars: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]]) -> HybridScorer:
        """Rebuild a scorer saved by `to_arrays`."""
        a = dict(arrays)
        low, high = scalars["rating_scale"]
        scorer = cls(
            items=IdIndex(a["item_ids"]),
            history=Interactions.from_arrays(a, "history_"),
            titles=a["titles"],
            global_mean=float(scalars["global_mean"]),
            rating_scale=(float(low), float(high)),
            popularity=a["popularity"].astype(np.float64),
            popularity_z=a["popularity_z"].astype(np.float64),
            activity_mean=float(scalars["activity_mean"]),
            als_config=ALSConfig.model_validate(scalars["als_config"]),
            svd_reg=float(scalars["svd_reg"]),
            feature_names=tuple(scalars["feature_names"]),
            weights=None if scalars["weights"] is None else np.asarray(scalars["weights"], dtype=np.float64),
            intercept=float(scalars["intercept"]),
            pool_size=int(scalars["pool_size"]),
            content_pool=int(scalars["content_pool"]),
            cold_pool=int(scalars["cold_pool"]),
        )
        if "liked_share" in a:
            scorer.liked_share = a["liked_share"].astype(np.float64)
        if ItemItem.has_arrays(a, "ease_"):
            scorer.ease, scorer.ease_covered = (
                ItemItem.from_arrays(a, "ease_"),
                a["ease_covered"].astype(bool),
            )
        if ItemItem.has_arrays(a, "knn_"):
            scorer.knn, scorer.knn_covered = ItemItem.from_arrays(a, "knn_"), a["knn_covered"].astype(bool)
        if ItemItem.has_arrays(a, "content_sim_"):
            scorer.content = ItemItem.from_arrays(a, "content_sim_")
            scorer.content_known = a["content_known"].astype(bool)
        if "content_features_shape" in a:
            scorer.features = ItemFeatures.from_arrays(a, "content_features_")
        if "als_items" in a:
            scorer.als_users, scorer.als_items = a["als_users"], a["als_items"]
            scorer.als_covered = a["als_covered"].astype(bool)
        if "svd_items" in a:
            scorer.svd_users, scorer.svd_items = a["svd_users"], a["svd_items"]
            scorer.svd_user_bias, scorer.svd_item_bias = a["svd_user_bias"], a["svd_item_bias"]
            scorer.svd_covered = a["svd_covered"].astype(bool)
        if "rating_knn_params" in a:
            scorer.rating_knn = KNNBaselineArrays.from_arrays(a, "rating_knn_")
            scorer.rating_weights = np.asarray(scalars["rating_weights"], dtype=np.float64)
        return scorer


class _Support:
    """Weights from a user's history to the ranked movies, computed once per request."""

    def __init__(self, scorer: HybridScorer, state: UserState, targets: IndexArray) -> None:
        self.scorer, self.state, self.targets = scorer, state, targets
        self.liked = profile_weights(state.ratings, liked_only=True) > 0
        self._rated: FloatArray | None = None
        self._content: FloatArray | None = None

    def rated(self, column: int) -> Explanation | None:
        """ "because you rated X" for the ranked movie in `column`, if a liked movie supports it."""
        scorer, state = self.scorer, self.state
        matrix = scorer.ease if scorer.ease is not None else scorer.knn
        if matrix is None or len(state.items) == 0:
            return None
        if self._rated is None:
            weights = matrix.weights_between(state.items, self.targets)
            self._rated = np.where(self.liked[:, None], weights, -np.inf) if self.liked.any() else weights
        support = self._rated[:, column]
        best = int(np.argmax(support))
        if not support[best] > 0:
            return None
        source = int(state.items[best])
        title = display_title(str(scorer.titles[source]))
        movie_id = int(scorer.items.ids[source])
        if state.liked_only:
            return Explanation("rated", f"because you liked {title}", movie_id)
        stars = _star_text(float(state.ratings[best]))
        return Explanation("rated", f"because you rated {title} {stars}", movie_id)

    def content(self, column: int) -> Explanation | None:
        """What the ranked movie in `column` shares with the most similar liked movie."""
        scorer = self.scorer
        if scorer.content is None or not self.liked.any():
            return None
        sources = self.state.items[self.liked]
        if self._content is None:
            self._content = scorer.content.weights_between(sources, self.targets)
        support = self._content[:, column]
        best = int(np.argmax(support))
        if not support[best] > 0:
            return None
        source = int(sources[best])
        reason = scorer._content_reason(int(self.targets[column]), source)
        return Explanation("content", reason, int(scorer.items.ids[source]))


# -- fitting ------------------------------------------------------------------------------------


@dataclass
class FittedParts:
    """The component models fitted on one ratings frame, and the scorer built from them."""

    scorer: HybridScorer
    models: dict[str, Recommender]


def _content_item_item(
    features: ItemFeatures, items: IdIndex, config: HybridConfig
) -> tuple[ItemItem, NDArray[np.bool_]]:
    """Content cosine similarities between items, in item positions (zero diagonal)."""
    rows = features.rows(items.ids)
    known = rows >= 0
    matrix = features.matrix[np.maximum(rows, 0)]
    matrix = matrix.multiply(known[:, None].astype(np.float32)).tocsr()
    if len(items) <= config.ease.max_dense_items:
        dense = (matrix @ matrix.T).toarray().astype(np.float32)
        np.fill_diagonal(dense, 0.0)
        return ItemItem(dense), known
    return ItemItem(top_k_products(matrix, matrix, config.content_neighbours, exclude_diagonal=True)), known


def fit_parts(
    ratings: pd.DataFrame,
    catalog: Catalog | None,
    config: HybridConfig,
    *,
    with_rating_knn: bool = True,
) -> FittedParts:
    """Fit every component on one ratings frame and gather their arrays into a scorer.

    Args:
        ratings: Training ratings.
        catalog: Catalog frames (content is left out without one).
        config: Component configurations.
        with_rating_knn: Fit the KNNBaseline of the rating blend.

    Returns:
        The scorer (without re-ranker weights) and the fitted component models.
    """
    models: dict[str, Recommender] = {}
    models["popularity"] = PopularityRecommender(config.popularity).fit(ratings, catalog)
    data = models["popularity"].data
    models["ease"] = EASERecommender(config.ease).fit(ratings, catalog)
    models["als"] = ALSRecommender(config.als).fit(ratings, catalog)
    models["knn"] = ItemKNNRecommender(config.knn).fit(ratings, catalog)
    models["svd"] = svd = SVDRecommender(config.svd).fit(ratings, catalog)
    use_content = (
        config.use_content and catalog is not None and (len(catalog.genres) > 0 or len(catalog.credits) > 0)
    )
    if use_content:
        models["content"] = ContentRecommender(config.content).fit(ratings, catalog)
    for model in models.values():
        assert np.array_equal(model.item_ids, data.items.ids)

    titles = np.asarray([""] * len(data.items), dtype=np.str_)
    if catalog is not None:
        movie_titles = catalog.movies.drop_duplicates("movie_id").set_index("movie_id")["title"].astype(str)
        titles = np.asarray(
            [movie_titles.get(int(m), f"movie {int(m)}") for m in data.items.ids], dtype=np.str_
        )
    else:
        titles = np.asarray([f"movie {int(m)}" for m in data.items.ids], dtype=np.str_)

    pop_model = models["popularity"]
    assert isinstance(pop_model, PopularityRecommender) and pop_model.counts_ is not None
    log_pop = np.log1p(data.item_counts().astype(np.float64))
    pop_z = (log_pop - log_pop.mean()) / max(float(log_pop.std()), 1e-12)
    activity = np.log1p(np.diff(data.matrix.indptr).astype(np.float64))
    counts = data.item_counts().astype(np.float64)
    liked = np.bincount(
        data.matrix.indices,
        weights=(data.matrix.data >= config.relevance_threshold).astype(np.float64),
        minlength=len(data.items),
    )
    overall = float(liked.sum() / max(counts.sum(), 1.0))
    liked_share = (liked + config.liked_prior * overall) / (counts + config.liked_prior) - overall

    ease, als, knn = models["ease"], models["als"], models["knn"]
    assert isinstance(ease, EASERecommender) and isinstance(als, ALSRecommender)
    assert isinstance(knn, ItemKNNRecommender)
    bu, bi, pu, qi, svd_covered = svd._fitted()
    scorer = HybridScorer(
        items=data.items,
        history=data,
        titles=titles,
        global_mean=svd.global_mean_,
        rating_scale=svd.rating_scale_,
        popularity=np.asarray(pop_model.scores_, dtype=np.float32).astype(np.float64),
        popularity_z=pop_z.astype(np.float32).astype(np.float64),
        activity_mean=float(activity.mean()),
        liked_share=liked_share.astype(np.float32).astype(np.float64),
        ease=ease._fitted()[0],
        ease_covered=ease._fitted()[1],
        knn=knn._fitted()[0],
        knn_covered=knn._fitted()[1],
        als_users=als._fitted()[0],
        als_items=als._fitted()[1],
        als_covered=als._fitted()[2],
        als_config=config.als,
        svd_user_bias=bu.astype(np.float32),
        svd_item_bias=bi.astype(np.float32),
        svd_users=pu.astype(np.float32),
        svd_items=qi.astype(np.float32),
        svd_covered=svd_covered,
        svd_reg=config.svd.reg_all,
        pool_size=config.pool_size,
        content_pool=config.content_pool,
        cold_pool=config.cold_pool,
    )
    if use_content:
        content = models["content"]
        assert isinstance(content, ContentRecommender)
        features, _ = content._fitted()
        scorer.features = features
        scorer.content, scorer.content_known = _content_item_item(features, data.items, config)
    n_rated = int((data.item_counts() > 0).sum())
    if with_rating_knn and config.rating_knn is not None and n_rated <= config.max_rating_knn_items:
        surprise_knn = SurpriseRecommender(config.rating_knn).fit(ratings, catalog)
        scorer.rating_knn = KNNBaselineArrays.from_surprise(surprise_knn)
        models["knn_baseline"] = surprise_knn
    return FittedParts(scorer, models)


def _fit_logistic(features: FloatArray, labels: FloatArray, l2: float) -> tuple[FloatArray, float]:
    """L2-penalised logistic regression by L-BFGS; returns (weights, intercept)."""
    from scipy.optimize import minimize

    design = np.column_stack([features, np.ones(len(features))])
    penalty = np.full(design.shape[1], l2)
    penalty[-1] = 0.0

    def objective(w: FloatArray) -> tuple[float, FloatArray]:
        z = design @ w
        loss = float(np.sum(np.logaddexp(0.0, z) - labels * z) + 0.5 * np.sum(penalty * w * w))
        grad = design.T @ (1.0 / (1.0 + np.exp(-z)) - labels) + penalty * w
        return loss, grad

    result = minimize(objective, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(result.x[:-1], dtype=np.float64), float(result.x[-1])


@dataclass
class ValidationLists:
    """The validation users' candidate features, padded to one array, for fast list metrics."""

    features: FloatArray  # users x width x (features + 1), the last column constant 1
    labels: NDArray[np.bool_]  # users x width
    pools: IndexArray  # users x width, item positions (-1 padding)
    n_relevant: NDArray[np.int64]
    n_items: int

    @classmethod
    def build(
        cls,
        matrices: Sequence[FloatArray],
        labels: Sequence[NDArray[np.bool_]],
        pools: Sequence[IndexArray],
        n_relevant: Sequence[int],
        n_items: int,
    ) -> ValidationLists:
        """Pad per-user arrays (features without the constant column) into one block."""
        width = max(len(pool) for pool in pools)
        n_features = matrices[0].shape[1] + 1
        features = np.zeros((len(pools), width, n_features))
        padded_labels = np.zeros((len(pools), width), dtype=bool)
        padded_pools = np.full((len(pools), width), -1, dtype=np.intp)
        for row, (matrix, label, pool) in enumerate(zip(matrices, labels, pools, strict=True)):
            features[row, : len(pool), :-1] = matrix
            features[row, : len(pool), -1] = 1.0
            padded_labels[row, : len(pool)] = label
            padded_pools[row, : len(pool)] = pool
        return cls(features, padded_labels, padded_pools, np.asarray(n_relevant, dtype=np.int64), n_items)

    def evaluate(self, weights: FloatArray, k: int = 10) -> tuple[float, float]:
        """Mean nDCG@k over the users and the share of the catalog their top-k lists cover."""
        scores = self.features @ weights
        scores[self.pools < 0] = -np.inf
        width = min(k, scores.shape[1])
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        items = np.take_along_axis(self.pools, top, axis=1)
        gains = np.take_along_axis(self.labels, top, axis=1) & (items >= 0)
        discounts = 1.0 / np.log2(np.arange(2, width + 2))
        ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[np.clip(self.n_relevant, 1, k) - 1]
        ndcg = float(np.mean((gains * discounts).sum(axis=1) / ideal))
        coverage = len(np.unique(items[items >= 0])) / self.n_items
        return ndcg, coverage


def _refine(
    lists: ValidationLists, weights: FloatArray, rounds: int, coverage_weight: float, k: int = 10
) -> FloatArray:
    """Coordinate ascent on `nDCG@k + coverage_weight * coverage`, one weight at a time."""

    def objective(w: FloatArray) -> tuple[float, float, float]:
        ndcg, coverage = lists.evaluate(w, k)
        return ndcg + coverage_weight * coverage, ndcg, coverage

    best = weights.copy()
    best_score, start_ndcg, start_coverage = objective(best)
    ndcg, coverage = start_ndcg, start_coverage
    steps = (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.1, 1.33, 2.0)
    for _ in range(rounds):
        improved = False
        for j in range(len(best)):
            scale = max(abs(best[j]), 0.05)
            for step in steps:
                trial = best.copy()
                trial[j] = best[j] * step if best[j] != 0 else scale * (step - 1.0)
                score, trial_ndcg, trial_coverage = objective(trial)
                if score > best_score + 1e-6:
                    best, best_score, improved = trial, score, True
                    ndcg, coverage = trial_ndcg, trial_coverage
        if not improved:
            break
    logger.info(
        "re-ranker on validation: nDCG@%d %.4f -> %.4f, coverage %.3f -> %.3f after refinement",
        k,
        start_ndcg,
        ndcg,
        start_coverage,
        coverage,
    )
    return best


def fit_reranker(
    scorer: HybridScorer, validation: pd.DataFrame, config: HybridConfig
) -> tuple[tuple[str, ...], FloatArray, float, dict[str, float]]:
    """Fit the re-ranker's weights on held-out ratings of the users the scorer was fitted on.

    Args:
        scorer: Components fitted on the ratings not in `validation`.
        validation: Held-out ratings.
        config: Threshold, penalty, user cap and refinement rounds.

    Returns:
        Feature names, weights, intercept and validation metrics.

    Raises:
        ModelError: If no validation user has a relevant held-out movie.
    """
    names = scorer.all_feature_names()
    scorer.feature_names = names
    relevant = validation[validation["rating"].to_numpy() >= config.relevance_threshold]
    users = np.unique(relevant["user_id"].to_numpy(np.int64))
    users = users[scorer.history.users.indices(users) >= 0]
    if len(users) == 0:
        raise ModelError("no validation user has a relevant held-out movie; cannot fit the re-ranker")
    rng = np.random.default_rng(config.seed)
    if len(users) > config.max_validation_users:
        users = np.sort(rng.choice(users, config.max_validation_users, replace=False))
    by_user = relevant.groupby("user_id")["movie_id"].apply(lambda s: s.to_numpy(np.int64))
    matrices: list[FloatArray] = []
    labels: list[NDArray[np.bool_]] = []
    pools: list[IndexArray] = []
    n_relevant: list[int] = []
    for user_id in users:
        state = scorer.state_for_user(scorer.history.users.index(int(user_id)))
        full = scorer._full_vectors(state)
        blocked = np.zeros(scorer.n_items, dtype=bool)
        blocked[state.items] = True
        pool = scorer.candidate_pool(state, full, blocked)
        matrix = scorer.feature_matrix(state, pool, full, pool)
        target_items = scorer.items.indices(by_user[user_id])
        label = np.isin(pool, target_items)
        matrices.append(matrix)
        labels.append(label)
        pools.append(pool)
        n_relevant.append(int((target_items >= 0).sum()))
    lists = ValidationLists.build(matrices, labels, pools, n_relevant, scorer.n_items)
    features, y = np.vstack(matrices), np.concatenate(labels).astype(np.float64)
    mean, std = features.mean(axis=0), features.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    weights, intercept = _fit_logistic((features - mean) / std, y, config.l2)
    # Undo the column scaling used for conditioning.
    weights = weights / std
    intercept = intercept - float(weights @ mean)
    combined = np.append(weights, intercept)
    before, _ = lists.evaluate(combined)
    if config.refine_rounds:
        combined = _refine(lists, combined, config.refine_rounds, config.coverage_weight)
    after, coverage = lists.evaluate(combined)
    recall_pool = float(np.mean(lists.labels.sum(axis=1) / np.maximum(lists.n_relevant, 1)))
    metrics = {
        "validation_users": float(len(users)),
        "validation_ndcg_logistic": before,
        "validation_ndcg": after,
        "validation_coverage": coverage,
        "validation_pool_recall": recall_pool,
        "validation_positive_rate": float(y.mean()),
    }
    return names, combined[:-1], float(combined[-1]), metrics


def fit_rating_blend(parts: FittedParts, validation: pd.DataFrame) -> FloatArray | None:
    """Least-squares weights (intercept, SVD, KNNBaseline) on held-out ratings; None without kNN."""
    scorer = parts.scorer
    if scorer.rating_knn is None:
        return None
    svd_values, knn_values, truth = [], [], []
    assert scorer.svd_covered is not None
    for user_id, rows in rows_by_user(validation):
        user = scorer.history.users.index(user_id)
        if user < 0:
            continue
        state = scorer.state_for_user(user)
        items = scorer.items.indices(validation["movie_id"].to_numpy(np.int64)[rows])
        ok = items >= 0
        ok[ok] = scorer.svd_covered[items[ok]]
        svd_values.append(scorer.svd_scores(state, items[ok]))
        knn_values.append(scorer.rating_knn.predict(state.knn_bias, state.items, state.ratings, items[ok]))
        truth.append(validation["rating"].to_numpy(np.float64)[rows][ok])
    design = np.column_stack(
        [np.ones(sum(map(len, truth))), np.concatenate(svd_values), np.concatenate(knn_values)]
    )
    target = np.concatenate(truth)
    finite = np.isfinite(design).all(axis=1)
    solution, *_ = np.linalg.lstsq(design[finite], target[finite], rcond=None)
    return np.asarray(solution, dtype=np.float64)


class HybridRecommender(Recommender):
    """The learned two-stage hybrid (see the module docstring); also the best rating predictor."""

    name = "hybrid"
    config_class = HybridConfig
    predicts_ratings = True

    def __init__(self, config: HybridConfig | None = None) -> None:
        super().__init__(config)
        self.scorer_: HybridScorer | None = None
        self.models_: dict[str, Recommender] = {}
        self.validation_metrics_: dict[str, float] = {}

    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Fit the re-ranker on a validation split, then every component on all ratings."""
        started = time.perf_counter()
        split = validation_split(
            ratings,
            protocol=self.config.validation_protocol,
            fraction=self.config.validation_fraction,
            seed=self.config.seed,
        )
        with stopwatch("fitted hybrid components on the validation fit split", log=logger):
            inner = fit_parts(split.train, catalog, self.config)
        with stopwatch("fitted the re-ranker", log=logger):
            names, weights, intercept, metrics = fit_reranker(inner.scorer, split.test, self.config)
            rating_weights = fit_rating_blend(inner, split.test)
        logger.info(
            "re-ranker weights: %s", {n: round(float(w), 3) for n, w in zip(names, weights, strict=True)}
        )
        with stopwatch("refitted hybrid components on all %d ratings", len(ratings), log=logger):
            parts = fit_parts(ratings, catalog, self.config, with_rating_knn=rating_weights is not None)
        scorer = parts.scorer
        scorer.feature_names, scorer.weights, scorer.intercept = names, weights, intercept
        scorer.rating_weights = rating_weights if scorer.rating_knn is not None else None
        self.scorer_, self.models_ = scorer, parts.models
        self._data = scorer.history
        self.validation_metrics_ = metrics | {"fit_seconds": time.perf_counter() - started}
        return self

    def _fitted(self) -> HybridScorer:
        if self.scorer_ is None:
            raise NotFittedError(self.name)
        return self.scorer_

    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        scorer = self._fitted()
        return scorer.score_items(scorer.state_for_user(user_index), items)

    def recommend(
        self,
        user_id: int,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: ArrayLike | None = None,
    ) -> Recommendations:
        """The user's top-k by the re-ranker (see `Recommender.recommend`)."""
        if candidates is not None:
            return super().recommend(user_id, k, exclude_seen=exclude_seen, candidates=candidates)
        scorer = self._fitted()
        user = scorer.history.users.index(user_id)
        if user < 0 or k <= 0:
            return Recommendations.empty()
        ranked = scorer.rank(scorer.state_for_user(user), k, exclude_seen=exclude_seen)
        return Recommendations(scorer.items.ids[ranked.items], ranked.scores)

    def explain(self, user_id: int, k: int) -> list[tuple[int, Explanation]]:
        """The user's top-k with an explanation each (empty for an unknown user)."""
        scorer = self._fitted()
        user = scorer.history.users.index(user_id)
        if user < 0:
            return []
        state = scorer.state_for_user(user)
        ranked = scorer.rank(state, k)
        explanations = scorer.explain(state, ranked)
        return [(int(scorer.items.ids[i]), e) for i, e in zip(ranked.items, explanations, strict=True)]

    def _similar_scores(self, item_index: int) -> FloatArray:
        scorer = self._fitted()
        out = np.zeros(scorer.n_items)
        parts = 0
        for matrix in (scorer.ease, scorer.content):
            if matrix is not None:
                row = matrix.row(item_index)
                if np.any(row > 0):
                    out += row / max(float(np.abs(row).max()), 1e-12)
                    parts += 1
        return out if parts else np.full(scorer.n_items, np.nan)

    def predict_rating(self, user_id: int, movie_id: int) -> float:
        """Blended SVD + KNNBaseline rating, clipped; NaN for an unknown user or movie."""
        scorer = self._fitted()
        user, item = scorer.history.users.index(user_id), scorer.items.index(movie_id)
        if user < 0 or item < 0:
            return float("nan")
        return float(
            scorer.predict_ratings(scorer.state_for_user(user), np.asarray([item], dtype=np.intp))[0]
        )

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        scalars, arrays = self._fitted().to_arrays()
        return scalars | {"validation_metrics": self.validation_metrics_}, arrays

    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        self.scorer_ = HybridScorer.from_arrays(scalars, arrays)
        self.validation_metrics_ = dict(scalars.get("validation_metrics", {}))
