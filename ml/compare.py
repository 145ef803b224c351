"""Side-by-side offline comparison of recommenders on one dataset.

`compare_models` fits each model on the train part of one split and measures, on the held-out
part:

- rating prediction (models that predict ratings): RMSE and MAE over the pairs the model can
  predict, and the share it can predict;
- top-k ranking: every movie the user has not rated in train is a candidate, relevant = held-out
  rating >= `relevance_threshold`; precision, recall, F1, MAP, MRR, nDCG and hit rate at k (users
  without a relevant held-out movie are left out), catalog coverage, intra-list diversity over
  genres, novelty (`-log2 p(i)`), popularity bias (mean `p(i)` of what is shown);
- cost: seconds to fit, milliseconds to produce one user's list.

and, for the rating predictors listed in `cv_models`, RMSE and MAE in `cv_folds`-fold cross
validation. The `movierec evaluate` command wraps it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.evaluation.metrics import item_popularity, ranking_metrics, rating_metrics, relevant_items
from ml.evaluation.splitting import Split, kfold, temporal_holdout, user_holdout
from ml.models import MODEL_NAMES, ModelConfig, create_model
from ml.models.base import Catalog, Recommender
from ml.models.hybrid import HybridConfig

logger = logging.getLogger(__name__)

DEFAULT_MODELS = ("svd", "ease", "als", "knn", "content", "hybrid", "popularity")
DEFAULT_CV_MODELS = ("svd", "blend")
Protocol = Literal["user_holdout", "temporal"]
Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) after each fitted model and each CV fold."""

RANKING_COLUMNS = (
    "precision",
    "recall",
    "f1",
    "map",
    "mrr",
    "ndcg",
    "hit_rate",
    "catalog_coverage",
    "intra_list_diversity",
    "novelty",
    "popularity_bias",
)


def make_split(
    ratings: pd.DataFrame, protocol: Protocol, *, test_fraction: float = 0.2, seed: int = 42
) -> Split:
    """The evaluation split of a protocol.

    Args:
        ratings: All ratings.
        protocol: "user_holdout" (a random `test_fraction` of each user's ratings) or "temporal"
            (each user's latest `test_fraction`).
        test_fraction: Share held out per user.
        seed: Seed of the random protocol.

    Returns:
        The split.

    Raises:
        ValueError: Unknown protocol.
    """
    if protocol == "user_holdout":
        return user_holdout(ratings, test_fraction, seed)
    if protocol == "temporal":
        return temporal_holdout(ratings, fraction=test_fraction)
    raise ValueError(f"unknown protocol {protocol!r}; expected 'user_holdout' or 'temporal'")


def genre_vectors(catalog: Catalog) -> tuple[sp.csr_matrix, np.ndarray]:
    """One-hot genre rows of the catalog movies and the movie id of each row (for diversity)."""
    ids = catalog.movie_ids
    genres = catalog.genres.dropna()
    names = sorted({str(g) for g in genres["genre"].unique()})
    if not names:
        return sp.csr_matrix((len(ids), 1), dtype=np.float32), ids
    rows = np.searchsorted(ids, genres["movie_id"].to_numpy(np.int64))
    rows = np.minimum(rows, len(ids) - 1)
    ok = ids[rows] == genres["movie_id"].to_numpy(np.int64)
    lookup = {name: i for i, name in enumerate(names)}
    cols = np.asarray([lookup[str(g)] for g in genres["genre"].to_numpy()[ok]])
    matrix = sp.csr_matrix((np.ones(len(cols), np.float32), (rows[ok], cols)), shape=(len(ids), len(names)))
    matrix.data[:] = 1.0
    return matrix, ids


def evaluate_model(
    model: Recommender,
    split: Split,
    catalog: Catalog,
    *,
    k: int = 10,
    relevance_threshold: float = 4.0,
    vectors: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> dict[str, float]:
    """Rating and ranking metrics of a model fitted on `split.train`.

    Args:
        model: The fitted model.
        split: Its split.
        catalog: The catalog (size for coverage, genres for diversity).
        k: List length.
        relevance_threshold: Lowest held-out rating that counts as relevant.
        vectors: Genre vectors (computed from the catalog if None).

    Returns:
        Metrics by name (see the module docstring), plus `score_ms_per_user`.
    """
    out: dict[str, float] = {}
    test = split.test
    if model.predicts_ratings:
        truth = test["rating"].to_numpy(np.float64)
        predicted = np.asarray(
            [
                model.predict_rating(int(u), int(m))
                for u, m in zip(test["user_id"], test["movie_id"], strict=True)
            ]
        )
        rating = rating_metrics(truth, predicted)
        out |= {"rmse": rating["rmse"], "mae": rating["mae"], "rating_coverage": rating["coverage"]}
    relevant = relevant_items(test, relevance_threshold)
    users = list(relevant)
    started = time.perf_counter()
    lists = [model.recommend(user, k).movie_ids for user in users]
    out["score_ms_per_user"] = (time.perf_counter() - started) * 1000 / max(len(users), 1)
    popularity = item_popularity(split.train, items=catalog.movie_ids, smoothing=1)
    matrix, ids = vectors if vectors is not None else genre_vectors(catalog)
    report = ranking_metrics(
        lists,
        [relevant[u] for u in users],
        k=k,
        n_items=len(catalog.movie_ids),
        item_popularity=popularity,
        item_vectors=matrix,
        item_index=ids,
    )
    out |= {name: float(report[name]) for name in RANKING_COLUMNS if name in report}
    out["n_users"] = float(report["n_users"])
    return out


def cross_validate_rmse(
    model_name: str,
    ratings: pd.DataFrame,
    catalog: Catalog | None,
    *,
    folds: int = 5,
    seed: int = 42,
    config: ModelConfig | None = None,
    on_fold: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """k-fold RMSE and MAE of a rating predictor (Surprise's protocol: rows shuffled into folds).

    Args:
        model_name: A name accepted by `ml.models.create_model`.
        ratings: All ratings.
        catalog: Passed to `fit`.
        folds: Number of folds.
        seed: Seed of the fold assignment.
        config: Model configuration.
        on_fold: Called with the fold number after each fold.

    Returns:
        `cv_rmse`, `cv_rmse_std`, `cv_mae`, `cv_coverage` (mean share of test pairs predicted).
    """
    rmses, maes, coverages = [], [], []
    for fold, split in enumerate(kfold(ratings, folds, seed)):
        model = create_model(model_name, config).fit(split.train, catalog)
        test = split.test
        predicted = np.asarray(
            [
                model.predict_rating(int(u), int(m))
                for u, m in zip(test["user_id"], test["movie_id"], strict=True)
            ]
        )
        result = rating_metrics(test["rating"].to_numpy(np.float64), predicted)
        rmses.append(result["rmse"])
        maes.append(result["mae"])
        coverages.append(result["coverage"])
        logger.info("%s fold %d: RMSE %.4f", model_name, fold, result["rmse"])
        if on_fold is not None:
            on_fold(fold)
    return {
        "cv_rmse": float(np.mean(rmses)),
        "cv_rmse_std": float(np.std(rmses)),
        "cv_mae": float(np.mean(maes)),
        "cv_coverage": float(np.mean(coverages)),
    }


def compare_models(
    dataset: Any,
    models: Sequence[str] = DEFAULT_MODELS,
    protocol: Protocol = "user_holdout",
    k: int = 10,
    progress: Progress | None = None,
    *,
    cv_models: Sequence[str] = DEFAULT_CV_MODELS,
    cv_folds: int = 5,
    test_fraction: float = 0.2,
    seed: int = 42,
    relevance_threshold: float = 4.0,
    configs: Mapping[str, ModelConfig] | None = None,
) -> pd.DataFrame:
    """Fit and evaluate several models on one split (and cross-validate the rating predictors).

    Args:
        dataset: An `ml.datasets.Dataset`.
        models: Model names (see `ml.models.MODEL_NAMES`).
        protocol: "user_holdout" or "temporal".
        k: List length.
        progress: Called as progress(stage, done, total).
        cv_models: Rating predictors to cross-validate (0 folds or an empty list: none).
        cv_folds: Number of folds.
        test_fraction: Share of each user's ratings held out.
        seed: Seed of the split and of the folds.
        relevance_threshold: Lowest held-out rating that counts as relevant.
        configs: Configuration per model name (defaults otherwise).

    Returns:
        One row per model, indexed by model name, with the columns of `evaluate_model`,
        `fit_seconds`, and for `cv_models` the `cv_*` columns; NaN where not applicable.

    Raises:
        ValueError: An unknown model name or protocol.
    """
    unknown = [name for name in (*models, *cv_models) if name not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown models {unknown}; available: {', '.join(MODEL_NAMES)}")
    configs = configs or {}
    catalog = Catalog.from_dataset(dataset)
    split = make_split(dataset.ratings, protocol, test_fraction=test_fraction, seed=seed)
    vectors = genre_vectors(catalog)
    cv_list = list(cv_models) if cv_folds >= 2 else []
    total = len(models) + len(cv_list) * cv_folds
    done = 0

    def step(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, total)

    rows: dict[str, dict[str, float]] = {}
    for name in models:
        config = configs.get(name)
        if name == "hybrid" and config is None and protocol == "temporal":
            # Validate the re-ranker the way it is tested: on each user's latest ratings.
            config = HybridConfig(validation_protocol="temporal")
        started = time.perf_counter()
        model = create_model(name, config).fit(split.train, catalog)
        fit_seconds = time.perf_counter() - started
        metrics = evaluate_model(
            model, split, catalog, k=k, relevance_threshold=relevance_threshold, vectors=vectors
        )
        rows[name] = {"fit_seconds": fit_seconds, **metrics}
        logger.info(
            "%s on %s: P@%d %.4f, nDCG@%d %.4f, fit %.1fs",
            name,
            protocol,
            k,
            metrics.get("precision", float("nan")),
            k,
            metrics.get("ndcg", float("nan")),
            fit_seconds,
        )
        step(f"{name} on {protocol}")
    for name in cv_list:

        def fold_done(fold: int, name: str = name) -> None:
            step(f"{name} fold {fold + 1}/{cv_folds}")

        result = cross_validate_rmse(
            name,
            dataset.ratings,
            catalog,
            folds=cv_folds,
            seed=seed,
            config=configs.get(name),
            on_fold=fold_done,
        )
        rows.setdefault(name, {}).update(result)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    frame.insert(0, "protocol", protocol)
    return frame
