"""Surprise's other rating predictors behind the same interface: kNN (user- or item-based, incl.
KNNBaseline), NMF, SVD++ and BaselineOnly, selected by `SurpriseConfig.algorithm`.

Scores go through Surprise's own `estimate`, after checking that the user and the movie are in the
trainset (Surprise's kNN and baseline estimates silently fall back to baselines for unknown
users). Saving keeps the fitted arrays (similarities, baselines, factors) and the ratings; loading
rebuilds the trainset from those ratings, in the same order so inner ids match, and sets the
arrays back without refitting. No pickle.

Predicting goes through Python for every (user, movie) pair, about 20-50 µs each for kNN: fine
for RMSE on a test set and for ranking a few hundred candidates, too slow to rank a large catalog
per request. `ml.models.blend` has a numpy version of item-based KNNBaseline for serving.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from ml.models.base import (
    Catalog,
    FloatArray,
    IndexArray,
    ModelConfig,
    ModelFormatError,
    NotFittedError,
    Recommender,
    stopwatch,
)
from ml.models.svd import surprise_trainset

logger = logging.getLogger(__name__)

SurpriseAlgorithm = Literal[
    "knn_basic", "knn_with_means", "knn_with_zscore", "knn_baseline", "nmf", "svdpp", "baseline_only"
]
_KNN = ("knn_basic", "knn_with_means", "knn_with_zscore", "knn_baseline")
_CLASS_NAMES = {
    "knn_basic": "KNNBasic",
    "knn_with_means": "KNNWithMeans",
    "knn_with_zscore": "KNNWithZScore",
    "knn_baseline": "KNNBaseline",
    "nmf": "NMF",
    "svdpp": "SVDpp",
    "baseline_only": "BaselineOnly",
}


class SurpriseConfig(ModelConfig):
    """Which Surprise algorithm, and its hyper-parameters (None: Surprise's default)."""

    algorithm: SurpriseAlgorithm = "knn_baseline"
    user_based: bool = False
    """kNN only: similarities between users (True) or between movies (False)."""
    k: int = Field(default=40, ge=1)
    min_k: int = Field(default=1, ge=1)
    similarity: Literal["cosine", "msd", "pearson", "pearson_baseline"] = "pearson_baseline"
    shrinkage: int = Field(default=100, ge=0)
    """pearson_baseline only."""
    min_support: int = Field(default=1, ge=0)
    baseline_method: Literal["als", "sgd"] = "als"
    baseline_epochs: int = Field(default=10, ge=1)
    baseline_reg_user: float = Field(default=15.0, ge=0)
    baseline_reg_item: float = Field(default=10.0, ge=0)
    n_factors: int | None = Field(default=None, ge=1)
    """NMF and SVD++."""
    n_epochs: int | None = Field(default=None, ge=1)
    """NMF and SVD++."""
    random_state: int = 42

    def build(self) -> Any:
        """The unfitted Surprise algorithm object."""
        import surprise

        cls = getattr(surprise, _CLASS_NAMES[self.algorithm])
        kwargs: dict[str, Any] = {}
        if self.algorithm in _KNN or self.algorithm == "baseline_only":
            kwargs["bsl_options"] = {
                "method": self.baseline_method,
                "n_epochs": self.baseline_epochs,
                "reg_u": self.baseline_reg_user,
                "reg_i": self.baseline_reg_item,
            }
        if self.algorithm in _KNN:
            kwargs |= {
                "k": self.k,
                "min_k": self.min_k,
                "verbose": False,
                "sim_options": {
                    "name": self.similarity,
                    "user_based": self.user_based,
                    "min_support": self.min_support,
                    "shrinkage": self.shrinkage,
                },
            }
            if self.similarity != "pearson_baseline":
                kwargs["sim_options"].pop("shrinkage")
        if self.algorithm in ("nmf", "svdpp"):
            kwargs["random_state"] = self.random_state
            if self.n_factors is not None:
                kwargs["n_factors"] = self.n_factors
            if self.n_epochs is not None:
                kwargs["n_epochs"] = self.n_epochs
        if self.algorithm == "baseline_only":
            kwargs["verbose"] = False
        return cls(**kwargs)


# Fitted attributes worth saving; the trainset and its derived lists are rebuilt on load.
_ARRAY_ATTRIBUTES = ("sim", "means", "sigmas", "bu", "bi", "bx", "by", "pu", "qi", "yj")
_SCALAR_ATTRIBUTES = ("overall_sigma",)


class SurpriseRecommender(Recommender):
    """Any of Surprise's rating predictors; scores are predicted ratings."""

    name = "surprise"
    config_class = SurpriseConfig
    predicts_ratings = True

    def __init__(self, config: SurpriseConfig | None = None) -> None:
        super().__init__(config)
        self.algo_: Any = None
        self.rating_scale_: tuple[float, float] = (float("nan"), float("nan"))
        self._inner_items: IndexArray | None = None  # our item position -> Surprise inner id (-1)
        self._inner_users: IndexArray | None = None

    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Fit the configured Surprise algorithm (see `Recommender.fit`)."""
        with stopwatch("fitted Surprise %s on %d ratings", self.config.algorithm, len(ratings), log=logger):
            data = self._index(ratings, catalog)
            trainset = surprise_trainset(data)
            self.algo_ = self.config.build()
            self.algo_.fit(trainset)
            self._map_ids(trainset)
        return self

    def _map_ids(self, trainset: Any) -> None:
        data = self.data
        self._inner_users = np.full(len(data.users), -1, dtype=np.intp)
        self._inner_users[data.users.indices([trainset.to_raw_uid(u) for u in range(trainset.n_users)])] = (
            np.arange(trainset.n_users)
        )
        self._inner_items = np.full(len(data.items), -1, dtype=np.intp)
        self._inner_items[data.items.indices([trainset.to_raw_iid(i) for i in range(trainset.n_items)])] = (
            np.arange(trainset.n_items)
        )
        self.rating_scale_ = (float(trainset.rating_scale[0]), float(trainset.rating_scale[1]))

    def _fitted(self) -> tuple[Any, IndexArray, IndexArray]:
        if self.algo_ is None or self._inner_items is None or self._inner_users is None:
            raise NotFittedError(self.name)
        return self.algo_, self._inner_users, self._inner_items

    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        from surprise import PredictionImpossible

        algo, inner_users, inner_items = self._fitted()
        out = np.full(len(items), np.nan)
        inner_user = int(inner_users[user_index])
        if inner_user < 0:
            return out
        for pos, inner_item in enumerate(inner_items[items]):
            if inner_item < 0:
                continue
            try:
                estimate = algo.estimate(inner_user, int(inner_item))
            except PredictionImpossible:
                continue
            out[pos] = estimate[0] if isinstance(estimate, tuple) else estimate
        return out

    def _similar_scores(self, item_index: int) -> FloatArray:
        algo, _, inner_items = self._fitted()
        out = np.full(len(inner_items), np.nan)
        inner = int(inner_items[item_index])
        known = inner_items >= 0
        if inner < 0:
            return out
        if getattr(algo, "sim", None) is not None and not self.config.user_based:
            out[known] = algo.sim[inner, inner_items[known]]
        elif getattr(algo, "qi", None) is not None:
            factors = algo.qi
            norms = np.linalg.norm(factors, axis=1) + 1e-12
            out[known] = (factors[inner_items[known]] @ factors[inner]) / (
                norms[inner_items[known]] * norms[inner]
            )
        return out

    def predict_rating(self, user_id: int, movie_id: int) -> float:
        """Predicted rating clipped to the training scale, NaN when Surprise cannot predict."""
        value = float(self.score(user_id, [movie_id])[0])
        return float(np.clip(value, *self.rating_scale_)) if np.isfinite(value) else float("nan")

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        algo, _, _ = self._fitted()
        arrays = {
            name: np.asarray(getattr(algo, name))
            for name in _ARRAY_ATTRIBUTES
            if isinstance(getattr(algo, name, None), np.ndarray)
        }
        scalars = {name: float(getattr(algo, name)) for name in _SCALAR_ATTRIBUTES if hasattr(algo, name)}
        return scalars, {f"surprise_{name}": value for name, value in arrays.items()}

    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        from surprise.prediction_algorithms.algo_base import AlgoBase
        from surprise.prediction_algorithms.knns import SymmetricAlgo

        trainset = surprise_trainset(self.data)
        algo = self.config.build()
        # Set the trainset (and the kNN neighbour lists) without training.
        (SymmetricAlgo if isinstance(algo, SymmetricAlgo) else AlgoBase).fit(algo, trainset)
        for key, value in arrays.items():
            if key.startswith("surprise_"):
                setattr(algo, key.removeprefix("surprise_"), value)
        for name, value in scalars.items():
            setattr(algo, name, value)
        if self.config.algorithm in _KNN and getattr(algo, "sim", None) is None:
            raise ModelFormatError("saved Surprise kNN model has no similarity matrix")
        self.algo_ = algo
        self._map_ids(trainset)
