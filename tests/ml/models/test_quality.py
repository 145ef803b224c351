"""Quality bands on MovieLens 100K: one per-user random 80/20 holdout (seed 42), measured values
in docs/benchmarks.md. The hybrid and its components are fitted once per session (conftest)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluation.metrics import ranking_metrics, rating_metrics, relevant_items
from ml.evaluation.splitting import Split
from ml.models.base import Recommender
from ml.models.hybrid import HybridRecommender

pytestmark = pytest.mark.slow

K = 10
N_MOVIES = 1682


def _ranking(model: Recommender, split: Split) -> dict[str, float]:
    relevant = relevant_items(split.test)
    users = list(relevant)
    lists = [model.recommend(user, K).movie_ids for user in users]
    return ranking_metrics(lists, [relevant[u] for u in users], k=K, n_items=N_MOVIES)


def _rmse(model: Recommender, split: Split) -> float:
    test = split.test
    predicted = np.asarray(
        [model.predict_rating(int(u), int(m)) for u, m in zip(test["user_id"], test["movie_id"], strict=True)]
    )
    return rating_metrics(test["rating"].to_numpy(np.float64), predicted)["rmse"]


@pytest.fixture(scope="module")
def hybrid_ranking(ml100k_hybrid: HybridRecommender, ml100k_split: Split) -> dict[str, float]:
    return _ranking(ml100k_hybrid, ml100k_split)


@pytest.fixture(scope="module")
def component_ranking(ml100k_hybrid: HybridRecommender, ml100k_split: Split) -> dict[str, dict[str, float]]:
    return {
        name: _ranking(model, ml100k_split)
        for name, model in ml100k_hybrid.models_.items()
        if name in ("ease", "als", "knn", "svd", "popularity")
    }


class TestRatingPrediction:
    def test_svd_rmse_in_band(self, ml100k_hybrid: HybridRecommender, ml100k_split: Split) -> None:
        # measured 0.907 on this split (5-fold CV: 0.910)
        assert 0.895 <= _rmse(ml100k_hybrid.models_["svd"], ml100k_split) <= 0.915

    def test_blend_beats_svd(self, ml100k_hybrid: HybridRecommender, ml100k_split: Split) -> None:
        # measured 0.902 against 0.907
        blend = _rmse(ml100k_hybrid, ml100k_split)
        assert 0.890 <= blend <= 0.910
        assert blend < _rmse(ml100k_hybrid.models_["svd"], ml100k_split)


class TestRanking:
    def test_ease_in_band(self, component_ranking: dict[str, dict[str, float]]) -> None:
        # measured P@10 0.265, nDCG@10 0.361
        ease = component_ranking["ease"]
        assert 0.255 <= ease["precision"] <= 0.275
        assert 0.350 <= ease["ndcg"] <= 0.372

    def test_hybrid_in_band(self, hybrid_ranking: dict[str, float]) -> None:
        # measured P@10 0.282, R@10 0.308, nDCG@10 0.387, coverage 0.222
        assert 0.272 <= hybrid_ranking["precision"] <= 0.292
        assert 0.297 <= hybrid_ranking["recall"] <= 0.320
        assert 0.375 <= hybrid_ranking["ndcg"] <= 0.398
        assert 0.19 <= hybrid_ranking["catalog_coverage"] <= 0.26

    def test_hybrid_beats_every_single_model(
        self, hybrid_ranking: dict[str, float], component_ranking: dict[str, dict[str, float]]
    ) -> None:
        for name, metrics in component_ranking.items():
            assert hybrid_ranking["ndcg"] > metrics["ndcg"], name
            assert hybrid_ranking["precision"] > metrics["precision"], name

    def test_hybrid_far_ahead_of_popularity_and_svd_ranking(
        self, hybrid_ranking: dict[str, float], component_ranking: dict[str, dict[str, float]]
    ) -> None:
        assert hybrid_ranking["precision"] > 1.8 * component_ranking["popularity"]["precision"]
        assert hybrid_ranking["precision"] > 3 * component_ranking["svd"]["precision"]
