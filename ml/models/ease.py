"""EASE: a closed-form linear item-item model of binary interactions (Steck, WWW 2019).

`B = argmin ||X - X B||^2 + lambda ||B||^2` with `diag(B) = 0` has the closed form
`P = (X^T X + lambda I)^-1`, `B = -P / diag(P)` (off the diagonal). A user's score of every movie is
the sum of the rows of `B` of the movies they rated. On MovieLens 100K it is the strongest single
top-N ranker we measured (P@10 0.264 against 0.137 for popularity).

The inverse is dense items x items, so the model is capped at `max_items` items (20,000: a 1.6 GB
float32 matrix while fitting): above the cap it is fitted on the `max_items` most rated movies and
cannot score the others (NaN); the hybrid still reaches them through ALS and content. Above
`max_dense_items` the weights are kept as the `neighbours` largest entries of each row (sparse).
"""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
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
from ml.models.neighbours import ItemItem, sparsify_rows

logger = logging.getLogger(__name__)


class EASEConfig(ModelConfig):
    """Hyper-parameters of EASE."""

    regularization: float = Field(default=500.0, gt=0)
    """L2 penalty lambda; 300-500 is best on MovieLens 100K (P@10 0.263 at both)."""
    max_items: int = Field(default=20_000, ge=2)
    """Most rated items the model is fitted on; the inverse is max_items^2 float32."""
    max_dense_items: int = Field(default=5_000, ge=2)
    """Above this many items the weights are sparsified to `neighbours` per row."""
    neighbours: int = Field(default=200, ge=1)
    """Entries kept per row when sparsified."""


def ease_weights(binary: sp.csr_matrix, regularization: float) -> NDArray[np.float32]:
    """The EASE weight matrix of a binary users x items matrix.

    Args:
        binary: Users x items, 1 where the user rated the item.
        regularization: lambda.

    Returns:
        Items x items float32 weights with a zero diagonal.
    """
    gram = (binary.T @ binary).toarray().astype(np.float32)
    diag = np.diag_indices_from(gram)
    gram[diag] += np.float32(regularization)
    inverse = np.linalg.inv(gram)
    weights = inverse / (-np.diag(inverse))[None, :]
    weights[diag] = 0.0
    return weights.astype(np.float32, copy=False)


def fit_ease_item_item(binary: sp.csr_matrix, config: EASEConfig) -> tuple[ItemItem, NDArray[np.bool_]]:
    """Fit EASE on a binary matrix and return its weights over every column of the matrix.

    Args:
        binary: Users x items, 1 where the user rated the item (items may have no ratings).
        config: Regularisation, item cap and sparsification.

    Returns:
        The weights as an `ItemItem` over all items, and the mask of items the model covers.
    """
    n_items = binary.shape[1]
    counts = np.asarray(binary.sum(axis=0)).ravel()
    active = np.flatnonzero(counts > 0)
    if len(active) > config.max_items:
        logger.warning(
            "EASE: %d rated items exceed max_items=%d; fitting on the most rated ones",
            len(active),
            config.max_items,
        )
        order = np.lexsort((active, -counts[active]))
        active = np.sort(active[order[: config.max_items]])
    covered = np.zeros(n_items, dtype=bool)
    covered[active] = True
    weights = ease_weights(binary[:, active].tocsr(), config.regularization)
    if n_items <= config.max_dense_items:
        full = np.zeros((n_items, n_items), dtype=np.float32)
        full[np.ix_(active, active)] = weights
        return ItemItem(full), covered
    sub = sparsify_rows(weights, config.neighbours).tocoo()
    matrix = sp.csr_matrix((sub.data, (active[sub.row], active[sub.col])), shape=(n_items, n_items))
    return ItemItem(matrix), covered


class EASERecommender(Recommender):
    """EASE on binary interactions: ranks movies, does not predict ratings."""

    name = "ease"
    config_class = EASEConfig

    def __init__(self, config: EASEConfig | None = None) -> None:
        super().__init__(config)
        self.weights_: ItemItem | None = None
        self.covered_: NDArray[np.bool_] | None = None

    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Compute the weight matrix (see `Recommender.fit`)."""
        with stopwatch("fitted EASE on %d ratings", len(ratings), log=logger):
            data = self._index(ratings, catalog)
            self.weights_, self.covered_ = fit_ease_item_item(data.binary(), self.config)
        return self

    def _fitted(self) -> tuple[ItemItem, NDArray[np.bool_]]:
        if self.weights_ is None or self.covered_ is None:
            raise NotFittedError(self.name)
        return self.weights_, self.covered_

    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        weights, covered = self._fitted()
        history, _ = self.data.history(user_index)
        scores = weights.scores(history)[items]
        return np.where(covered[items], scores, np.nan)

    def _similar_scores(self, item_index: int) -> FloatArray:
        weights, covered = self._fitted()
        if not covered[item_index]:
            return np.full(weights.n_items, np.nan)
        return np.where(covered, weights.row(item_index), np.nan)

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        weights, covered = self._fitted()
        return {}, {**weights.to_arrays("ease_"), "covered": covered}

    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        self.weights_ = ItemItem.from_arrays(arrays, "ease_")
        self.covered_ = arrays["covered"].astype(bool)
