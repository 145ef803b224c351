"""Recommendations from a history given at request time: new users, changed histories, new movies.

Nothing here retrains a model. A history `[(movie_id, rating), ...]` is folded into the trained
spaces with the item side held fixed:

- biased matrix factorisation (SVD): the user bias and vector are the ridge solution of
  `r - mu - b_i = b_u + q_i . p_u` over the rated movies, with the penalty `reg * n` that Surprise's
  per-rating SGD regularisation amounts to;
- implicit ALS: the user vector is the exact least-squares step of ALS itself
  (`(Y^T Y + Y_h^T (C_h - I) Y_h + reg I) x = Y_h^T C_h 1`), as `implicit` computes it;
- EASE, item kNN and content: the user's scores are sums of item rows, so a history is all
  they need.

A user who only names movies they like (no ratings) gets each one as a `liked_rating` (5 stars).
A movie nobody has rated yet has no factors; it is reached through content similarity, which
`ml.content` computes from genres, title words and people.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml.titles import DEFAULT_MIN_SCORE, TitleIndex, TitleMatch

logger = logging.getLogger(__name__)

LIKED_RATING = 5.0
"""Rating given to a movie a user names as liked without rating it."""

History = Sequence[tuple[int, float]]
"""A user's ratings as (movie_id, rating) pairs."""


def fold_in_biased(
    ratings: NDArray[np.floating[Any]],
    item_factors: NDArray[np.floating[Any]],
    item_biases: NDArray[np.floating[Any]],
    global_mean: float,
    regularization: float,
) -> tuple[float, NDArray[np.float64]]:
    """User bias and factors of a biased MF model (Surprise SVD) from ratings of known items.

    Args:
        ratings: The user's ratings (length n).
        item_factors: n x f factors of the rated items.
        item_biases: Their n biases.
        global_mean: The model's global mean.
        regularization: Surprise's `reg_all` (per rating); the ridge penalty is `reg * n`.

    Returns:
        The user bias and the user's factor vector (zeros for an empty history).
    """
    n, n_factors = item_factors.shape
    if n == 0:
        return 0.0, np.zeros(n_factors)
    design = np.empty((n, n_factors + 1))
    design[:, 0] = 1.0
    design[:, 1:] = item_factors
    target = np.asarray(ratings, dtype=np.float64) - global_mean - item_biases
    gram = design.T @ design
    gram[np.diag_indices_from(gram)] += regularization * n
    solution = np.linalg.solve(gram, design.T @ target)
    return float(solution[0]), solution[1:]


def fold_in_implicit(
    confidence: NDArray[np.floating[Any]],
    item_factors: NDArray[np.floating[Any]],
    gram: NDArray[np.floating[Any]],
    regularization: float,
) -> NDArray[np.float64]:
    """User factors of an implicit-feedback ALS model (`implicit`) from confidences of known items.

    Args:
        confidence: Confidence `c_j` of each interacted item (`alpha * value`, as `implicit` scales).
        item_factors: n x f factors of those items.
        gram: `Y^T Y` over all items (f x f).
        regularization: The model's L2 penalty.

    Returns:
        The user's factor vector (zeros for an empty history).
    """
    n_factors = gram.shape[0]
    if len(confidence) == 0:
        return np.zeros(n_factors)
    factors = np.asarray(item_factors, dtype=np.float64)
    c = np.asarray(confidence, dtype=np.float64)
    system = gram.astype(np.float64) + (factors.T * (c - 1.0)) @ factors
    system[np.diag_indices_from(system)] += regularization
    return np.asarray(np.linalg.solve(system, factors.T @ c), dtype=np.float64)


def history_from_liked(movie_ids: Iterable[int], rating: float = LIKED_RATING) -> list[tuple[int, float]]:
    """A history in which every named movie is rated `rating` (duplicates dropped, order kept)."""
    seen: set[int] = set()
    history = []
    for movie_id in movie_ids:
        if int(movie_id) not in seen:
            seen.add(int(movie_id))
            history.append((int(movie_id), float(rating)))
    return history


def normalise_history(history: History) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Movie ids and ratings of a history as arrays; a repeated movie keeps its last rating.

    Raises:
        ValueError: If a rating is not a finite number.
    """
    if len(history) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    latest: dict[int, float] = {}
    for movie_id, rating in history:
        value = float(rating)
        if not np.isfinite(value):
            raise ValueError(f"rating of movie {movie_id} is not a number: {rating!r}")
        latest[int(movie_id)] = value
    ids = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
    values = np.fromiter(latest.values(), dtype=np.float32, count=len(latest))
    return ids, values


@dataclass(frozen=True)
class ResolvedTitles:
    """The outcome of turning a user's free-text titles into movies."""

    movie_ids: list[int]
    matches: dict[str, TitleMatch]
    unmatched: list[str]


def resolve_liked_titles(
    titles: Sequence[str], index: TitleIndex, *, min_score: float = DEFAULT_MIN_SCORE
) -> ResolvedTitles:
    """Resolve free-text titles ("star wars", "Heat (1995)") to catalog movies.

    Args:
        titles: What the user typed, one title per entry.
        index: The catalog's fuzzy title index.
        min_score: Lowest rapidfuzz score (0-100) accepted as a match.

    Returns:
        The best match of each title that has one (duplicates dropped, order kept), and the
        titles that matched nothing.
    """
    movie_ids: list[int] = []
    matches: dict[str, TitleMatch] = {}
    unmatched: list[str] = []
    for title in titles:
        found = index.match(title, limit=1, min_score=min_score)
        if not found:
            unmatched.append(title)
            continue
        matches[title] = found[0]
        if found[0].movie_id not in movie_ids:
            movie_ids.append(found[0].movie_id)
    if unmatched:
        logger.info("no catalog movie matches %d of %d titles", len(unmatched), len(titles))
    return ResolvedTitles(movie_ids, matches, unmatched)
