"""Accuracy and beyond-accuracy metrics for rating predictions and top-K recommendation lists.

Rating metrics take aligned arrays of true and predicted ratings. A NaN (or infinite) prediction is
a pair the model could not score; `rmse` and `mae` raise on it rather than drop it, and
`rating_metrics` reports the error over the predicted pairs together with their share
(`prediction_coverage`).

Ranking metrics take ``recommended``, one list of item ids per user, best first: a 2-D integer
array padded with -1, or a sequence of 1-D arrays. Only the first ``k`` items count. Negative ids
are padding, and a repeated id is treated as an empty slot after its first occurrence, so a list
cannot score the same item twice. ``relevant`` holds, per user and in the same order, the ids of
the relevant items (a set, list or array).

Conventions, all per user and then averaged with equal weight per user:

- Users without any relevant item are left out of the accuracy metrics (precision, recall, F1,
  MAP, MRR, nDCG, hit rate), whose value for them is undefined or meaningless. With no user left,
  a metric is NaN.
- Precision divides by ``k`` even when a list is shorter: an empty slot is a miss.
- F1 is the per-user harmonic mean of precision and recall, ``2 * hits / (k + |relevant|)``.
- AP@K sums precision at each hit and divides by ``min(|relevant|, k)``; nDCG@K uses binary gains,
  a ``log2(rank + 1)`` discount and an ideal list of ``min(|relevant|, k)`` hits.
- Beyond-accuracy metrics describe what is shown and use every list with at least one item
  (diversity: at least two), whether or not its user has relevant items.

Lists are scored as given: leaving out the movies a user rated in train is the recommender's job.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "RankingReport",
    "catalog_coverage",
    "f1_at_k",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_popularity",
    "mae",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "popularity_bias",
    "precision_at_k",
    "prediction_coverage",
    "ranking_metrics",
    "ranking_report",
    "rating_metrics",
    "recall_at_k",
    "relevant_items",
    "rmse",
]

Recommended: TypeAlias = NDArray[np.integer[Any]] | Sequence[ArrayLike]
"""Per-user lists of item ids, best first: a 2-D int array padded with -1, or a sequence of 1-D arrays."""

Relevant: TypeAlias = Sequence[Collection[int] | NDArray[np.integer[Any]]]
"""Per-user relevant item ids, aligned with the recommended lists."""

ItemIndex: TypeAlias = Mapping[int, int] | Sequence[int] | NDArray[np.integer[Any]] | pd.Index
"""Rows of an item matrix: a mapping item id -> row, or the item id of each row."""

Popularity: TypeAlias = pd.Series | Mapping[int, float]
"""Share of users who interacted with each item, indexed by item id."""

_PerUser: TypeAlias = Callable[[NDArray[np.bool_], NDArray[np.int64], int], NDArray[np.float64]]

_PAD = -1
# Lists per chunk in intra_list_diversity: the gathered (lists * k, dims) item vectors stay near
# 2**22 floats (32 MiB) whatever the number of users.
_DIVERSITY_BLOCK = 2**22


# --- rating prediction ---------------------------------------------------------------------------


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error of rating predictions.

    Args:
        y_true: true ratings.
        y_pred: predicted ratings, aligned with ``y_true``.

    Returns:
        ``sqrt(mean((y_true - y_pred) ** 2))``.

    Raises:
        ValueError: empty or misaligned inputs, a non-finite true rating, or a NaN or infinite
            prediction (fill it with a fallback or use `rating_metrics`).
    """
    true, pred = _rating_arrays(y_true, y_pred, allow_missing=False)
    return float(np.sqrt(np.mean((true - pred) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error of rating predictions.

    Args:
        y_true: true ratings.
        y_pred: predicted ratings, aligned with ``y_true``.

    Returns:
        ``mean(abs(y_true - y_pred))``.

    Raises:
        ValueError: as `rmse`.
    """
    true, pred = _rating_arrays(y_true, y_pred, allow_missing=False)
    return float(np.mean(np.abs(true - pred)))


def prediction_coverage(y_pred: ArrayLike) -> float:
    """Share of the pairs that the model could score (finite predictions).

    Args:
        y_pred: predicted ratings, NaN where the model could not predict.

    Returns:
        A value in [0, 1].

    Raises:
        ValueError: ``y_pred`` is empty.
    """
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if not pred.size:
        raise ValueError("no predictions")
    return float(np.isfinite(pred).mean())


def rating_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """RMSE and MAE over the predicted pairs, with the count of pairs left unpredicted.

    Args:
        y_true: true ratings.
        y_pred: predicted ratings, NaN where the model could not predict.

    Returns:
        ``rmse`` and ``mae`` over finite predictions (NaN if there is none), ``coverage`` (their
        share), ``n_pairs`` and ``n_unpredicted``.

    Raises:
        ValueError: empty or misaligned inputs, or a non-finite true rating.
    """
    true, pred = _rating_arrays(y_true, y_pred, allow_missing=True)
    predicted = np.isfinite(pred)
    error = true[predicted] - pred[predicted]
    return {
        "rmse": float(np.sqrt(np.mean(error**2))) if error.size else np.nan,
        "mae": float(np.mean(np.abs(error))) if error.size else np.nan,
        "coverage": float(predicted.mean()),
        "n_pairs": float(true.size),
        "n_unpredicted": float(true.size - predicted.sum()),
    }


def _rating_arrays(
    y_true: ArrayLike, y_pred: ArrayLike, *, allow_missing: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.ndim != 1 or true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred must be 1-D and aligned, got {true.shape} and {pred.shape}")
    if not true.size:
        raise ValueError("no ratings to evaluate")
    if not np.isfinite(true).all():
        raise ValueError("y_true holds NaN or infinite ratings")
    n_missing = int(np.count_nonzero(~np.isfinite(pred)))
    if n_missing and not allow_missing:
        raise ValueError(
            f"{n_missing} of {pred.size} predictions are NaN or infinite; give them a fallback "
            "prediction or use rating_metrics(), which reports the error with its coverage"
        )
    return true, pred


# --- top-K lists: accuracy -----------------------------------------------------------------------


def _precision(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return hits.sum(axis=1) / k


def _recall(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return hits.sum(axis=1) / n_relevant


def _f1(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    # 2PR / (P + R) with P = h / k and R = h / |rel| simplifies to 2h / (k + |rel|), 0 without hits.
    return 2 * hits.sum(axis=1) / (k + n_relevant)


def _average_precision(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision_at_rank * hits).sum(axis=1) / np.minimum(n_relevant, k)


def _reciprocal_rank(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return np.where(hits.any(axis=1), 1.0 / (hits.argmax(axis=1) + 1), 0.0)


def _ndcg(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    return (hits @ discount) / ideal


def _hit(hits: NDArray[np.bool_], n_relevant: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    return np.where(hits.any(axis=1), 1.0, 0.0)


_ACCURACY: dict[str, _PerUser] = {
    "precision": _precision,
    "recall": _recall,
    "f1": _f1,
    "map": _average_precision,
    "mrr": _reciprocal_rank,
    "ndcg": _ndcg,
    "hit_rate": _hit,
}


def precision_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean share of the ``k`` slots holding a relevant item.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated; a shorter list counts its empty slots as misses.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("precision", recommended, relevant, k)


def recall_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean share of each user's relevant items found in the top ``k``: ``hits / |relevant|``.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("recall", recommended, relevant, k)


def f1_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean per-user harmonic mean of precision@k and recall@k, ``2 * hits / (k + |relevant|)``.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("f1", recommended, relevant, k)


def map_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean average precision: precision at each hit's rank, summed, over ``min(|relevant|, k)``.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("map", recommended, relevant, k)


def mrr_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean reciprocal rank of the first relevant item in the top ``k`` (0 without a hit).

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("mrr", recommended, relevant, k)


def ndcg_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean nDCG with binary gains: ``sum(hit_r / log2(r + 1)) / sum(1 / log2(r + 1), r <= min(|rel|, k))``.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("ndcg", recommended, relevant, k)


def hit_rate_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Share of users with at least one relevant item in their top ``k``.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.

    Returns:
        The mean over users with at least one relevant item; NaN if there is none.

    Raises:
        ValueError: misaligned inputs, ``k < 1``, or a negative relevant id.
        TypeError: non-integer item ids.
    """
    return _accuracy_metric("hit_rate", recommended, relevant, k)


def _accuracy_metric(name: str, recommended: Recommended, relevant: Relevant, k: int) -> float:
    hits, n_relevant = _hits(_as_lists(recommended, k), relevant)
    evaluated = n_relevant > 0
    return _mean(_ACCURACY[name](hits[evaluated], n_relevant[evaluated], k))


# --- top-K lists: beyond accuracy ----------------------------------------------------------------


def catalog_coverage(recommended: Recommended, n_items: int, *, k: int | None = None) -> float:
    """Share of the catalogue that appears in at least one list.

    Args:
        recommended: per-user lists, best first.
        n_items: catalogue size.
        k: list length evaluated; all of each list by default.

    Returns:
        Distinct recommended ids over ``n_items``.

    Raises:
        ValueError: ``n_items < 1``, or more distinct ids than ``n_items``.
    """
    return _catalog_coverage(_as_lists(recommended, k), n_items)


def intra_list_diversity(
    recommended: Recommended,
    item_vectors: NDArray[np.floating[Any]] | sp.sparray | sp.spmatrix,
    *,
    item_index: ItemIndex | None = None,
    k: int | None = None,
) -> float:
    """Mean pairwise cosine distance between the items of a list, averaged over lists.

    A zero vector has cosine similarity 0 with everything (distance 1), as in scikit-learn.
    Lists with fewer than two items are left out.

    Args:
        recommended: per-user lists, best first.
        item_vectors: one row per item (genres, tags, latent factors), dense or scipy sparse.
        item_index: how ids map to rows: a mapping id -> row, or the id of each row; by default
            an item's id is its row.
        k: list length evaluated; all of each list by default.

    Returns:
        A value in [0, 2] (in [0, 1] for non-negative vectors); NaN if no list has two items.

    Raises:
        ValueError: a recommended id with no row in ``item_vectors``.
    """
    return _diversity(_as_lists(recommended, k), item_vectors, item_index)


def novelty(recommended: Recommended, item_popularity: Popularity, *, k: int | None = None) -> float:
    """Mean self-information ``-log2 p(i)`` of the recommended items, averaged over lists.

    Args:
        recommended: per-user lists, best first.
        item_popularity: ``p(i)``, the share of users who interacted with each item (see
            `item_popularity`).
        k: list length evaluated; all of each list by default.

    Returns:
        Bits of surprise per recommended item; NaN if every list is empty.

    Raises:
        ValueError: a recommended item with no popularity or one outside (0, 1]; an item nobody
            interacted with has unbounded self-information, so smooth the popularity instead.
    """
    return _novelty(_as_lists(recommended, k), item_popularity)


def popularity_bias(recommended: Recommended, item_popularity: Popularity, *, k: int | None = None) -> float:
    """Average recommendation popularity (ARP): mean ``p(i)`` of the recommended items, per list.

    Args:
        recommended: per-user lists, best first.
        item_popularity: share of users who interacted with each item; missing items count as 0.
        k: list length evaluated; all of each list by default.

    Returns:
        A value in [0, 1] (multiply by the number of users for the count-based ARP); NaN if every
        list is empty.

    Raises:
        ValueError: ``k < 1``.
        TypeError: non-integer item ids.
    """
    return _popularity_bias(_as_lists(recommended, k), item_popularity)


def _catalog_coverage(lists: NDArray[np.int64], n_items: int) -> float:
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    n_distinct = len(_distinct(lists[lists != _PAD]))
    if n_distinct > n_items:
        raise ValueError(f"{n_distinct} distinct items recommended from a catalogue of {n_items}")
    return n_distinct / n_items


def _novelty(lists: NDArray[np.int64], popularity: Popularity) -> float:
    shown = lists != _PAD
    p = _lookup(popularity, lists[shown])
    bad = ~((p > 0) & (p <= 1))
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} recommended items have no popularity in (0, 1], e.g. item "
            f"{int(lists[shown][bad][0])}; compute it with item_popularity(..., smoothing=1) to "
            "score items nobody interacted with"
        )
    return _mean_per_list(lists, -np.log2(p))


def _popularity_bias(lists: NDArray[np.int64], popularity: Popularity) -> float:
    shown = lists != _PAD
    return _mean_per_list(lists, np.nan_to_num(_lookup(popularity, lists[shown]), nan=0.0))


def _mean_per_list(lists: NDArray[np.int64], values: NDArray[np.float64]) -> float:
    """Mean over non-empty lists of each list's mean of ``values`` (one per shown item, row-major)."""
    shown = lists != _PAD
    per_item = np.zeros(lists.shape)
    per_item[shown] = values
    length = shown.sum(axis=1)
    non_empty = length > 0
    return _mean(per_item.sum(axis=1)[non_empty] / length[non_empty])


def _lookup(popularity: Popularity, ids: NDArray[np.int64]) -> NDArray[np.float64]:
    """Popularity of each id, NaN where it has none."""
    series = popularity if isinstance(popularity, pd.Series) else pd.Series(popularity, dtype=np.float64)
    position = pd.Index(series.index).get_indexer(ids)
    values = np.append(series.to_numpy(dtype=np.float64), np.nan)
    return values[position]  # position -1 (missing) reads the appended NaN


def _diversity(
    lists: NDArray[np.int64],
    item_vectors: NDArray[np.floating[Any]] | sp.sparray | sp.spmatrix,
    item_index: ItemIndex | None,
) -> float:
    vectors, has_direction = _unit_rows(item_vectors)
    rows = _rows_of(lists, item_index, vectors.shape[0])
    n_lists, width = rows.shape
    block = max(1, _DIVERSITY_BLOCK // (max(width, 1) * max(vectors.shape[1], 1)))
    # With unit vectors v_1..v_m, the similarities of the pairs i < j sum to
    # (|v_1 + ... + v_m|^2 - sum |v_i|^2) / 2, so no m x m matrix is needed.
    similarity_sum = np.zeros(n_lists)
    for start in range(0, n_lists, block):
        chunk = rows[start : start + block]
        owner, slot = np.nonzero(chunk >= 0)
        entries = chunk[owner, slot]
        gather = sp.csr_array(
            (np.ones(len(owner)), (owner, np.arange(len(owner)))), shape=(len(chunk), len(owner))
        )
        total_sq = _row_squares(gather @ vectors[entries])
        self_sq = np.bincount(owner, weights=has_direction[entries], minlength=len(chunk))
        similarity_sum[start : start + block] = (total_sq - self_sq) / 2
    length = (rows >= 0).sum(axis=1)
    scored = length >= 2
    n_pairs = length[scored] * (length[scored] - 1) / 2
    return _mean(np.clip(1.0 - similarity_sum[scored] / n_pairs, 0.0, 2.0))


def _unit_rows(
    item_vectors: NDArray[np.floating[Any]] | sp.sparray | sp.spmatrix,
) -> tuple[Any, NDArray[np.float64]]:
    """Rows scaled to unit length (zero rows stay zero), and 1.0 for each non-zero row."""
    if sp.issparse(item_vectors):
        vectors: Any = sp.csr_array(item_vectors, dtype=np.float64)
    else:
        vectors = np.asarray(item_vectors, dtype=np.float64)
        if vectors.ndim != 2:
            raise ValueError(f"item_vectors must be 2-D, got shape {vectors.shape}")
    norms = np.sqrt(_row_squares(vectors))
    inverse = 1.0 / np.where(norms > 0, norms, 1.0)
    if sp.issparse(vectors):
        unit = sp.csr_array(sp.diags_array(inverse) @ vectors)
    else:
        unit = vectors * inverse[:, None]
    return unit, (norms > 0).astype(np.float64)


def _row_squares(matrix: Any) -> NDArray[np.float64]:
    """Squared Euclidean norm of each row of a dense array or a scipy sparse matrix."""
    squares = matrix.multiply(matrix) if sp.issparse(matrix) else np.square(matrix)
    return np.asarray(squares.sum(axis=1), dtype=np.float64).ravel()


def _rows_of(lists: NDArray[np.int64], item_index: ItemIndex | None, n_rows: int) -> NDArray[np.int64]:
    """Row of each listed item in the item matrix, -1 for padding."""
    shown = lists != _PAD
    ids = lists[shown]
    if item_index is None:
        found = np.where(ids < n_rows, ids, -1)
    elif isinstance(item_index, Mapping):
        found = pd.Series(item_index, dtype=np.int64).reindex(ids).fillna(-1).to_numpy(dtype=np.int64)
    else:
        found = pd.Index(np.asarray(item_index)).get_indexer(ids)
    if (found < 0).any() or (found >= n_rows).any():
        missing = ids[(found < 0) | (found >= n_rows)]
        raise ValueError(
            f"{len(missing)} recommended items have no row in item_vectors, e.g. item {missing[0]}"
        )
    rows = np.full(lists.shape, -1, dtype=np.int64)
    rows[shown] = found
    return rows


# --- top-K lists: all at once --------------------------------------------------------------------


@dataclass(frozen=True)
class RankingReport:
    """Top-K metrics of one set of lists.

    Attributes:
        k: list length evaluated.
        n_lists: lists given.
        n_users: users with at least one relevant item, over which accuracy metrics average.
        precision, recall, f1, map, mrr, ndcg, hit_rate: accuracy metrics at ``k``.
        catalog_coverage: share of the catalogue recommended.
        intra_list_diversity, novelty, popularity_bias: None unless their inputs were given.
    """

    k: int
    n_lists: int
    n_users: int
    precision: float
    recall: float
    f1: float
    map: float
    mrr: float
    ndcg: float
    hit_rate: float
    catalog_coverage: float
    intra_list_diversity: float | None = None
    novelty: float | None = None
    popularity_bias: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The metrics by name, without ``k`` and without the ones not computed."""
        return {name: value for name, value in asdict(self).items() if name != "k" and value is not None}


def ranking_report(
    recommended: Recommended,
    relevant: Relevant,
    *,
    k: int,
    n_items: int,
    item_popularity: Popularity | None = None,
    item_vectors: NDArray[np.floating[Any]] | sp.sparray | sp.spmatrix | None = None,
    item_index: ItemIndex | None = None,
) -> RankingReport:
    """Every top-K metric in one pass over the lists.

    Args:
        recommended: per-user lists, best first (see the module docstring).
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.
        n_items: catalogue size, for `catalog_coverage`.
        item_popularity: enables `novelty` and `popularity_bias`.
        item_vectors: enables `intra_list_diversity`, with ``item_index`` mapping ids to rows.
        item_index: see `intra_list_diversity`.

    Returns:
        The report; accuracy metrics average over users with a relevant item, the others over
        lists.

    Raises:
        ValueError, TypeError: as the individual metrics.
    """
    lists = _as_lists(recommended, k)
    hits, n_relevant = _hits(lists, relevant)
    evaluated = n_relevant > 0
    hits, n_evaluated = hits[evaluated], n_relevant[evaluated]
    accuracy = {name: _mean(per_user(hits, n_evaluated, k)) for name, per_user in _ACCURACY.items()}
    return RankingReport(
        k=k,
        n_lists=len(lists),
        n_users=int(evaluated.sum()),
        **accuracy,
        catalog_coverage=_catalog_coverage(lists, n_items),
        intra_list_diversity=None if item_vectors is None else _diversity(lists, item_vectors, item_index),
        novelty=None if item_popularity is None else _novelty(lists, item_popularity),
        popularity_bias=None if item_popularity is None else _popularity_bias(lists, item_popularity),
    )


def ranking_metrics(
    recommended: Recommended,
    relevant: Relevant,
    *,
    k: int,
    n_items: int,
    item_popularity: Popularity | None = None,
    item_vectors: NDArray[np.floating[Any]] | sp.sparray | sp.spmatrix | None = None,
    item_index: ItemIndex | None = None,
) -> dict[str, float]:
    """`ranking_report` as a flat dict, e.g. for ``mlflow.log_metrics``.

    Args:
        recommended: per-user lists, best first.
        relevant: per-user relevant ids, aligned with ``recommended``.
        k: list length evaluated.
        n_items: catalogue size.
        item_popularity: enables ``novelty`` and ``popularity_bias``.
        item_vectors: enables ``intra_list_diversity``.
        item_index: maps ids to rows of ``item_vectors``.

    Returns:
        ``precision``, ``recall``, ``f1``, ``map``, ``mrr``, ``ndcg``, ``hit_rate``,
        ``catalog_coverage``, ``n_lists``, ``n_users`` and, when their inputs are given,
        ``intra_list_diversity``, ``novelty`` and ``popularity_bias``.

    Raises:
        ValueError, TypeError: as the individual metrics.
    """
    return ranking_report(
        recommended,
        relevant,
        k=k,
        n_items=n_items,
        item_popularity=item_popularity,
        item_vectors=item_vectors,
        item_index=item_index,
    ).as_dict()


# --- inputs --------------------------------------------------------------------------------------


def relevant_items(test: pd.DataFrame, threshold: float | None = 4.0) -> dict[int, set[int]]:
    """Relevant held-out movies per test user.

    Args:
        test: held-out ratings with ``user_id``, ``movie_id`` and ``rating`` columns.
        threshold: a held-out rating at least this high is relevant; None makes every held-out
            movie relevant.

    Returns:
        A set of movie ids for every user in ``test``, empty when none of the user's held-out
        ratings reaches the threshold (such users are left out of accuracy metrics).
    """
    kept = test if threshold is None else test[test["rating"].to_numpy() >= threshold]
    relevant: dict[int, set[int]] = {int(user): set() for user in test["user_id"].unique()}
    if kept.empty:
        return relevant
    users = kept["user_id"].to_numpy()
    order = np.argsort(users, kind="stable")
    users, movies = users[order], kept["movie_id"].to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for user, chunk in zip(users[starts].tolist(), np.split(movies, starts[1:]), strict=True):
        relevant[user] = set(chunk.tolist())
    return relevant


def item_popularity(
    ratings: pd.DataFrame, *, items: ArrayLike | None = None, smoothing: float = 0.0
) -> pd.Series:
    """Share of users who rated each movie, for `novelty` and `popularity_bias`.

    Args:
        ratings: the ratings the model was trained on (``user_id``, ``movie_id``).
        items: catalogue ids to include even if nobody rated them; by default the rated movies.
        smoothing: pseudo-count added to every movie and to the number of users,
            ``p = (raters + smoothing) / (users + smoothing)``; 1 gives a movie nobody rated
            ``1 / (users + 1)`` rather than 0.

    Returns:
        ``p(i)`` indexed by ``movie_id``.

    Raises:
        ValueError: negative ``smoothing`` or no users to divide by.
    """
    if smoothing < 0:
        raise ValueError(f"smoothing must be non-negative, got {smoothing}")
    n_users = ratings["user_id"].nunique() + smoothing
    if n_users <= 0:
        raise ValueError("no users to compute popularity from")
    raters = ratings.groupby("movie_id")["user_id"].nunique()
    if items is not None:
        raters = raters.reindex(pd.Index(np.asarray(items), name="movie_id"), fill_value=0)
    return ((raters + smoothing) / n_users).astype(np.float64).rename("popularity")


def _as_lists(recommended: Recommended, k: int | None) -> NDArray[np.int64]:
    """The lists as an (n_lists, k) int64 matrix, -1 for padding and for repeated ids."""
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if isinstance(recommended, np.ndarray) and recommended.dtype != object:
        if recommended.ndim != 2:
            raise ValueError(
                f"recommended must be a 2-D array or a sequence of lists, got shape {recommended.shape}"
            )
        _check_ids(recommended)
        width = recommended.shape[1] if k is None else k
        lists = np.full((len(recommended), width), _PAD, dtype=np.int64)
        lists[:, : min(width, recommended.shape[1])] = recommended[:, :width]
    else:
        rows = [np.asarray(row).ravel() for row in recommended]
        for row in rows:
            _check_ids(row)
        width = max((len(row) for row in rows), default=0) if k is None else k
        lists = np.full((len(rows), width), _PAD, dtype=np.int64)
        for i, row in enumerate(rows):
            lists[i, : min(len(row), width)] = row[:width]
    lists[lists < 0] = _PAD
    return _blank_repeats(lists)


def _check_ids(ids: NDArray[Any]) -> None:
    if ids.size and ids.dtype.kind not in "iu":
        raise TypeError(f"recommended ids must be integers, got {ids.dtype}")


def _blank_repeats(lists: NDArray[np.int64]) -> NDArray[np.int64]:
    """Replace every repeat of an id within a list by padding, keeping the first occurrence."""
    order = np.argsort(lists, axis=1, kind="stable")
    ordered = np.take_along_axis(lists, order, axis=1)
    repeat = np.zeros(lists.shape, dtype=bool)
    repeat[:, 1:] = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != _PAD)
    is_repeat = np.zeros(lists.shape, dtype=bool)
    np.put_along_axis(is_repeat, order, repeat, axis=1)
    lists[is_repeat] = _PAD
    return lists


def _hits(lists: NDArray[np.int64], relevant: Relevant) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Which slots hold a relevant item, and how many distinct relevant items each user has."""
    n_lists = len(lists)
    if len(relevant) != n_lists:
        raise ValueError(f"{n_lists} recommendation lists but {len(relevant)} relevant sets")
    sizes = np.fromiter(map(len, relevant), dtype=np.int64, count=n_lists)
    # One fromiter over all the sets: one call per user costs several times more at 100k users.
    relevant_ids = np.fromiter(chain.from_iterable(relevant), dtype=np.int64, count=int(sizes.sum()))
    if relevant_ids.size and relevant_ids.min() < 0:
        raise ValueError("relevant item ids must be non-negative")
    relevant_user = np.repeat(np.arange(n_lists), sizes)
    shown_user, shown_slot = np.nonzero(lists != _PAD)
    shown_ids = lists[shown_user, shown_slot]
    # (user, item) pairs become single int64 keys over a dense coding of the ids involved.
    codes, distinct = pd.factorize(np.concatenate([relevant_ids, shown_ids]))
    n_codes = max(len(distinct), 1)
    relevant_keys = _distinct(relevant_user * n_codes + codes[: len(relevant_ids)])
    shown_keys = shown_user * n_codes + codes[len(relevant_ids) :]
    hits = np.zeros(lists.shape, dtype=bool)
    if relevant_keys.size:
        found = np.minimum(np.searchsorted(relevant_keys, shown_keys), relevant_keys.size - 1)
        hits[shown_user, shown_slot] = relevant_keys[found] == shown_keys
    n_relevant = np.bincount(relevant_keys // n_codes, minlength=n_lists).astype(np.int64)
    return hits, n_relevant


def _distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct values; ``np.unique`` hashes first, which is several times slower here."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if ordered.size else ordered


def _mean(values: NDArray[np.float64]) -> float:
    return float(values.mean()) if values.size else np.nan
