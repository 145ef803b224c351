"""The rating predictor we ship: a linear blend of SVD and item-based KNNBaseline.

The two models err differently (global factors against local neighbourhoods), so a blend fitted by
least squares on a validation split carved from the training data beats both: see
`docs/benchmarks.md`. KNNBaseline is fitted by Surprise (baselines by ALS, pearson_baseline
similarities) and then predicted with numpy, reproducing Surprise's `KNNBaseline.estimate` for
item-based neighbourhoods, so it can run at serve time and fold in a history:

    r_ui = b_ui + sum_k sim(i, j) (r_uj - b_uj) / sum_k sim(i, j)

over the `k` rated movies `j` most similar to `i` with a positive similarity, `b_ui = mu + b_u + b_i`.
Its similarity matrix is items x items, so above `max_knn_items` rated movies the blend is SVD
alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from ml.evaluation.splitting import validation_split
from ml.models.base import (
    Catalog,
    FloatArray,
    IndexArray,
    ModelConfig,
    NotFittedError,
    Recommender,
    rows_by_user,
    stopwatch,
)
from ml.models.surprise_models import SurpriseConfig, SurpriseRecommender
from ml.models.svd import SVDConfig, SVDRecommender

logger = logging.getLogger(__name__)


@dataclass
class KNNBaselineArrays:
    """Item-based KNNBaseline as arrays over our item positions, predicted with numpy."""

    global_mean: float
    user_bias: FloatArray
    item_bias: FloatArray
    similarity: NDArray[np.float32]  # items x items, rows = target item
    covered: NDArray[np.bool_]
    k: int
    min_k: int
    reg_user: float

    @classmethod
    def from_surprise(cls, model: SurpriseRecommender) -> KNNBaselineArrays:
        """Copy a fitted item-based Surprise KNNBaseline into our item order."""
        algo, inner_users, inner_items = model._fitted()
        n_users, n_items = len(inner_users), len(inner_items)
        known_u, known_i = inner_users >= 0, inner_items >= 0
        user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
        user_bias[known_u] = algo.bu[inner_users[known_u]]
        item_bias[known_i] = algo.bi[inner_items[known_i]]
        similarity = np.zeros((n_items, n_items), dtype=np.float32)
        rows = np.flatnonzero(known_i)
        similarity[np.ix_(rows, rows)] = algo.sim[np.ix_(inner_items[rows], inner_items[rows])]
        # Rounded to float32 now so that saving (float32) loses nothing.
        return cls(
            global_mean=float(algo.trainset.global_mean),
            user_bias=user_bias.astype(np.float32).astype(np.float64),
            item_bias=item_bias.astype(np.float32).astype(np.float64),
            similarity=similarity,
            covered=known_i,
            k=model.config.k,
            min_k=model.config.min_k,
            reg_user=model.config.baseline_reg_user,
        )

    def fold_in_bias(self, items: IndexArray, ratings: NDArray[np.floating[Any]]) -> float:
        """User baseline bias from a history: Surprise's ALS user step, item biases fixed."""
        ok = self.covered[items]
        residual = np.asarray(ratings, dtype=np.float64)[ok] - self.global_mean - self.item_bias[items[ok]]
        return float(residual.sum() / (self.reg_user + ok.sum()))

    def predict(
        self, user_bias: float, items: IndexArray, ratings: NDArray[np.floating[Any]], targets: IndexArray
    ) -> FloatArray:
        """Predicted ratings of `targets` for a user with this history (NaN for uncovered targets).

        Args:
            user_bias: The user's baseline bias.
            items: Positions of the rated movies.
            ratings: Their ratings.
            targets: Positions of the movies to predict.

        Returns:
            One prediction per target, unclipped (as Surprise's `estimate`).
        """
        ok = self.covered[items]
        items, values = items[ok], np.asarray(ratings, dtype=np.float64)[ok]
        baseline = self.global_mean + user_bias + self.item_bias[targets]
        out = np.where(self.covered[targets], baseline, np.nan)
        if len(items) == 0 or len(targets) == 0:
            return out
        sims = self.similarity[np.ix_(targets, items)].astype(np.float64)
        residual = values - (self.global_mean + user_bias + self.item_bias[items])
        residuals = np.broadcast_to(residual, sims.shape)
        if len(items) > self.k:
            top = np.argpartition(-sims, self.k - 1, axis=1)[:, : self.k]
            sims = np.take_along_axis(sims, top, axis=1)
            residuals = np.take_along_axis(residuals, top, axis=1)
        positive = sims > 0
        weights = np.where(positive, sims, 0.0)
        total = weights.sum(axis=1)
        enough = (positive.sum(axis=1) >= self.min_k) & (total > 0)
        correction = np.divide(
            (weights * residuals).sum(axis=1), total, out=np.zeros_like(total), where=enough
        )
        return out + np.where(self.covered[targets], correction, 0.0)

    def to_arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        """Arrays for `from_arrays`."""
        return {
            f"{prefix}user_bias": self.user_bias.astype(np.float32),
            f"{prefix}item_bias": self.item_bias.astype(np.float32),
            f"{prefix}similarity": self.similarity.astype(np.float32),
            f"{prefix}covered": self.covered,
            f"{prefix}params": np.asarray(
                [self.global_mean, self.k, self.min_k, self.reg_user], dtype=np.float64
            ),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[Any]], prefix: str) -> KNNBaselineArrays:
        """Rebuild from `to_arrays` output."""
        mean, k, min_k, reg = arrays[f"{prefix}params"]
        return cls(
            global_mean=float(mean),
            user_bias=arrays[f"{prefix}user_bias"].astype(np.float64),
            item_bias=arrays[f"{prefix}item_bias"].astype(np.float64),
            similarity=arrays[f"{prefix}similarity"],
            covered=arrays[f"{prefix}covered"].astype(bool),
            k=int(k),
            min_k=int(min_k),
            reg_user=float(reg),
        )


class RatingBlendConfig(ModelConfig):
    """Components of the rating blend and how its weights are fitted."""

    svd: SVDConfig = Field(default_factory=SVDConfig)
    knn: SurpriseConfig = Field(default_factory=lambda: SurpriseConfig(algorithm="knn_baseline", k=40))
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_knn_items: int = Field(default=5_000, ge=2)
    """Above this many rated movies the kNN part is skipped (its similarities are items^2)."""
    seed: int = 42


def _least_squares_weights(features: FloatArray, target: FloatArray) -> FloatArray:
    design = np.column_stack([np.ones(len(target)), features])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return np.asarray(solution, dtype=np.float64)


class RatingBlendRecommender(Recommender):
    """`w0 + w1 * SVD + w2 * KNNBaseline`, weights fitted on a validation split; predicts ratings."""

    name = "blend"
    config_class = RatingBlendConfig
    predicts_ratings = True

    def __init__(self, config: RatingBlendConfig | None = None) -> None:
        super().__init__(config)
        self.svd_: SVDRecommender | None = None
        self.knn_: KNNBaselineArrays | None = None
        self.weights_: FloatArray | None = None

    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Fit the blend weights on a validation split, then both models on all ratings."""
        with stopwatch("fitted the SVD + KNNBaseline blend on %d ratings", len(ratings), log=logger):
            data = self._index(ratings, catalog)
            use_knn = int((data.item_counts() > 0).sum()) <= self.config.max_knn_items
            if not use_knn:
                logger.warning("blend: more than %d rated movies, SVD only", self.config.max_knn_items)
            if use_knn:
                split = validation_split(
                    ratings, fraction=self.config.validation_fraction, seed=self.config.seed
                )
                svd, knn = self._fit_parts(split.train, catalog)
                test = split.test
                features = np.column_stack(
                    [self._predict_pairs(svd, knn, test, part) for part in ("svd", "knn")]
                )
                ok = np.isfinite(features).all(axis=1)
                self.weights_ = _least_squares_weights(features[ok], test["rating"].to_numpy(np.float64)[ok])
                logger.info("blend weights (intercept, svd, knn): %s", np.round(self.weights_, 4).tolist())
            else:
                self.weights_ = np.asarray([0.0, 1.0, 0.0])
            self.svd_, knn_full = self._fit_parts(ratings, catalog, with_knn=use_knn)
            self.knn_ = knn_full
            self._data = data
        return self

    def _fit_parts(
        self, ratings: pd.DataFrame, catalog: Catalog | None, *, with_knn: bool = True
    ) -> tuple[SVDRecommender, KNNBaselineArrays | None]:
        svd = SVDRecommender(self.config.svd).fit(ratings, catalog)
        knn = None
        if with_knn:
            surprise_knn = SurpriseRecommender(self.config.knn).fit(ratings, catalog)
            knn = KNNBaselineArrays.from_surprise(surprise_knn)
            # Same ratings and catalog, hence the same item positions as the SVD's.
            assert np.array_equal(surprise_knn.data.items.ids, svd.data.items.ids)
        return svd, knn

    @staticmethod
    def _predict_pairs(
        svd: SVDRecommender, knn: KNNBaselineArrays | None, pairs: pd.DataFrame, part: str
    ) -> FloatArray:
        out = np.full(len(pairs), np.nan)
        for user_id, rows in rows_by_user(pairs):
            movies = pairs["movie_id"].to_numpy(np.int64)[rows]
            if part == "svd":
                out[rows] = svd.score(user_id, movies)
                continue
            assert knn is not None
            user = svd.data.users.index(user_id)
            if user < 0:
                continue
            items = svd.data.items.indices(movies)
            ok = items >= 0
            history, values = svd.data.history(user)
            predicted = knn.predict(float(knn.user_bias[user]), history, values, items[ok])
            part_out = np.full(len(rows), np.nan)
            part_out[ok] = predicted
            out[rows] = part_out
        return out

    def _fitted(self) -> tuple[SVDRecommender, KNNBaselineArrays | None, FloatArray]:
        if self.svd_ is None or self.weights_ is None:
            raise NotFittedError(self.name)
        return self.svd_, self.knn_, self.weights_

    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        svd, knn, weights = self._fitted()
        svd_scores = svd._score_items(user_index, items)
        if knn is None:
            return weights[0] + weights[1] * svd_scores
        history, values = self.data.history(user_index)
        knn_scores = knn.predict(float(knn.user_bias[user_index]), history, values, items)
        return weights[0] + weights[1] * svd_scores + weights[2] * knn_scores

    def _similar_scores(self, item_index: int) -> FloatArray:
        svd, _, _ = self._fitted()
        return svd._similar_scores(item_index)

    def predict_rating(self, user_id: int, movie_id: int) -> float:
        """Blended rating clipped to the training scale, NaN for an unknown user or movie."""
        svd, _, _ = self._fitted()
        value = float(self.score(user_id, [movie_id])[0])
        return float(np.clip(value, *svd.rating_scale_)) if np.isfinite(value) else float("nan")

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        svd, knn, weights = self._fitted()
        svd_scalars, svd_arrays = svd._state()
        arrays = {f"svd.{key}": value for key, value in svd_arrays.items()}
        if knn is not None:
            arrays |= knn.to_arrays("knn.")
        return {"svd": svd_scalars, "weights": weights.tolist()}, arrays

    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        svd = SVDRecommender(self.config.svd)
        svd._data = self.data
        svd._restore(
            scalars["svd"], {k.removeprefix("svd."): v for k, v in arrays.items() if k.startswith("svd.")}
        )
        self.svd_ = svd
        self.knn_ = KNNBaselineArrays.from_arrays(arrays, "knn.") if "knn.params" in arrays else None
        self.weights_ = np.asarray(scalars["weights"], dtype=np.float64)
