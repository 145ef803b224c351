"""The checks every recommender passes, run on a small synthetic dataset (one class per model)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from ml.datasets import Dataset
from ml.models import MODEL_NAMES, ModelFormatError, Recommender, create_model
from ml.models.base import Catalog, ModelConfig, NotFittedError
from ml.models.ease import EASEConfig
from ml.models.hybrid import HybridConfig
from ml.models.svd import SVDConfig

UNKNOWN_USER = 10**9
UNKNOWN_MOVIE = 10**9


class RecommenderContract:
    """Shared checks; subclasses name the model and optionally a config."""

    model_name: ClassVar[str]
    config: ClassVar[ModelConfig | None] = None

    @classmethod
    def make(cls) -> Recommender:
        return create_model(cls.model_name, cls.config)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, small_dataset: Dataset, small_catalog: Catalog) -> Recommender:
        return cls.make().fit(small_dataset.ratings, small_catalog)

    @pytest.fixture(scope="class")
    @staticmethod
    def users(small_dataset: Dataset) -> list[int]:
        return [int(u) for u in np.unique(small_dataset.ratings["user_id"])[:5]]

    def test_round_trip_gives_identical_scores(
        self, fitted: Recommender, users: list[int], tmp_path: Path
    ) -> None:
        # given
        path = fitted.save(tmp_path / "model")
        # when
        loaded = type(fitted).load(path)
        # then
        for user in users:
            np.testing.assert_array_equal(
                fitted.score(user, fitted.item_ids), loaded.score(user, loaded.item_ids)
            )
            assert (
                fitted.recommend(user, 10).movie_ids.tolist() == loaded.recommend(user, 10).movie_ids.tolist()
            )

    def test_load_refuses_another_model(self, fitted: Recommender, tmp_path: Path) -> None:
        path = fitted.save(tmp_path / "model")
        other = create_model("popularity" if fitted.name != "popularity" else "ease")
        with pytest.raises(ModelFormatError):
            type(other).load(path)

    def test_unknown_user_scores_nan_or_popularity(self, fitted: Recommender) -> None:
        scores = fitted.score(UNKNOWN_USER, fitted.item_ids[:20])
        if fitted.scores_unknown_users:
            assert np.isfinite(scores).all()
        else:
            assert np.isnan(scores).all()
            assert len(fitted.recommend(UNKNOWN_USER, 10)) == 0
            assert not fitted.known_user(UNKNOWN_USER)

    def test_unknown_movie_scores_nan(self, fitted: Recommender, users: list[int]) -> None:
        scores = fitted.score(users[0], [UNKNOWN_MOVIE, int(fitted.item_ids[0])])
        assert np.isnan(scores[0])

    def test_empty_candidates_give_empty_result(self, fitted: Recommender, users: list[int]) -> None:
        assert len(fitted.recommend(users[0], 10, candidates=[])) == 0
        assert len(fitted.score(users[0], [])) == 0

    def test_candidates_restrict_the_ranking(self, fitted: Recommender, users: list[int]) -> None:
        candidates = fitted.item_ids[::7]
        result = fitted.recommend(users[0], 5, candidates=candidates)
        assert set(result.movie_ids.tolist()) <= set(candidates.tolist())

    def test_exclude_seen_is_honoured(self, fitted: Recommender, users: list[int]) -> None:
        for user in users:
            seen = set(fitted.seen(user).tolist())
            assert seen
            assert not seen & set(fitted.recommend(user, 50).movie_ids.tolist())

    def test_k_larger_than_catalog(self, fitted: Recommender, users: list[int]) -> None:
        k = len(fitted.item_ids) + 100
        result = fitted.recommend(users[0], k)
        ids = result.movie_ids.tolist()
        assert len(ids) == len(set(ids))
        assert 0 < len(ids) <= len(fitted.item_ids) - len(fitted.seen(users[0]))
        assert np.all(np.diff(result.scores) <= 1e-12)

    def test_recommend_scores_match_score(self, fitted: Recommender, users: list[int]) -> None:
        result = fitted.recommend(users[1], 5)
        np.testing.assert_allclose(
            fitted.score(users[1], result.movie_ids), result.scores, rtol=1e-6, atol=1e-9
        )

    def test_same_seed_same_scores(
        self, fitted: Recommender, users: list[int], small_dataset: Dataset, small_catalog: Catalog
    ) -> None:
        again = self.make().fit(small_dataset.ratings, small_catalog)
        np.testing.assert_array_equal(
            fitted.score(users[2], fitted.item_ids), again.score(users[2], again.item_ids)
        )

    def test_similar_excludes_the_movie(self, fitted: Recommender) -> None:
        movie = int(fitted.item_ids[3])
        result = fitted.similar(movie, 5)
        assert movie not in result.movie_ids.tolist()
        assert len(fitted.similar(UNKNOWN_MOVIE, 5)) == 0

    def test_predict_rating(self, fitted: Recommender, users: list[int], small_dataset: Dataset) -> None:
        movie = int(fitted.item_ids[0])
        value = fitted.predict_rating(users[0], movie)
        if fitted.predicts_ratings:
            low, high = small_dataset.ratings["rating"].min(), small_dataset.ratings["rating"].max()
            assert low <= value <= high
        else:
            assert np.isnan(value)
        assert np.isnan(fitted.predict_rating(UNKNOWN_USER, movie))
        assert np.isnan(fitted.predict_rating(users[0], UNKNOWN_MOVIE))

    def test_unfitted_model_says_so(self) -> None:
        with pytest.raises(NotFittedError):
            self.make().recommend(1, 10)


class TestSVD(RecommenderContract):
    model_name = "svd"
    config = SVDConfig(n_factors=20, n_epochs=10)


class TestEASE(RecommenderContract):
    model_name = "ease"


class TestEASESparse(RecommenderContract):
    """Above `max_dense_items` the weights are top neighbours per row (the large-catalog path)."""

    model_name = "ease"
    config = EASEConfig(max_dense_items=100, neighbours=30)


class TestEASECapped(RecommenderContract):
    """Above `max_items` EASE covers the most rated movies only and scores the others NaN."""

    model_name = "ease"
    config = EASEConfig(max_items=200, max_dense_items=100, neighbours=30)

    def test_rarely_rated_movies_are_not_covered(self, fitted: Recommender, users: list[int]) -> None:
        scores = fitted.score(users[0], fitted.item_ids)
        assert np.isnan(scores).sum() >= len(fitted.item_ids) - 200


class TestALS(RecommenderContract):
    model_name = "als"


class TestItemKNN(RecommenderContract):
    model_name = "knn"


class TestContent(RecommenderContract):
    model_name = "content"


class TestPopularity(RecommenderContract):
    model_name = "popularity"


class TestRatingBlend(RecommenderContract):
    model_name = "blend"


class TestSurpriseKNNBaseline(RecommenderContract):
    model_name = "knn_baseline"


class TestSurpriseNMF(RecommenderContract):
    model_name = "nmf"


class TestHybrid(RecommenderContract):
    model_name = "hybrid"
    config = HybridConfig(svd=SVDConfig(n_factors=20, n_epochs=10), refine_rounds=1)


def test_every_registered_name_builds_a_model() -> None:
    for name in MODEL_NAMES:
        assert isinstance(create_model(name), Recommender)
    with pytest.raises(ValueError, match="unknown model"):
        create_model("nope")
