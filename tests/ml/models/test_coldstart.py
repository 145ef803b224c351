"""Fold-in of histories into trained models (`ml.coldstart`) and the numpy KNNBaseline."""

from __future__ import annotations

import numpy as np
import pytest

from ml.coldstart import (
    fold_in_biased,
    fold_in_implicit,
    history_from_liked,
    normalise_history,
    resolve_liked_titles,
)
from ml.datasets import Dataset
from ml.models.als import ALSRecommender
from ml.models.base import Catalog
from ml.models.blend import KNNBaselineArrays
from ml.models.surprise_models import SurpriseRecommender
from ml.models.svd import SVDConfig, SVDRecommender
from ml.titles import TitleIndex


class TestFoldInImplicit:
    def test_matches_implicit_recalculate_user(self, small_dataset: Dataset, small_catalog: Catalog) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        # given
        model = ALSRecommender().fit(small_dataset.ratings, small_catalog)
        _, factors, _ = model._fitted()
        reference = AlternatingLeastSquares(
            factors=factors.shape[1], regularization=model.config.regularization, alpha=model.config.alpha
        )
        reference.item_factors = factors
        user = int(small_dataset.ratings["user_id"].iloc[0])
        seen = model.seen(user)
        row = model.data.binary()[model.data.users.index(user)]
        # when
        ours = model.fold_in(seen, np.ones(len(seen)))
        theirs = reference.recalculate_user(0, row)
        # then
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-4)

    def test_empty_history_gives_zeros(self) -> None:
        assert not fold_in_implicit(np.empty(0), np.empty((0, 4)), np.eye(4), 1.0).any()


class TestFoldInBiased:
    def test_folded_in_user_ranks_like_the_trained_one(
        self, small_dataset: Dataset, small_catalog: Catalog
    ) -> None:
        # given
        model = SVDRecommender(SVDConfig(n_factors=20, n_epochs=30)).fit(small_dataset.ratings, small_catalog)
        user = int(small_dataset.ratings["user_id"].value_counts().index[0])
        items, ratings = model.data.history(model.data.users.index(user))
        # when
        bias, vector = model.fold_in(model.item_ids[items], ratings)
        _, bi, _, qi, _ = model._fitted()
        folded = model.global_mean_ + bias + bi + qi @ vector
        # then
        trained = model.score(user, model.item_ids)
        assert np.corrcoef(folded, trained)[0, 1] > 0.9

    def test_recovers_a_user_from_exact_ratings(self) -> None:
        rng = np.random.default_rng(0)
        factors = rng.normal(size=(200, 5))
        biases = rng.normal(scale=0.3, size=200)
        true_bias, true_vector = 0.4, rng.normal(size=5)
        ratings = 3.5 + biases + true_bias + factors @ true_vector
        bias, vector = fold_in_biased(ratings, factors, biases, 3.5, regularization=1e-6)
        assert bias == pytest.approx(true_bias, abs=1e-3)
        np.testing.assert_allclose(vector, true_vector, atol=1e-3)


class TestNumpyKNNBaseline:
    def test_matches_surprise_estimate(self, small_dataset: Dataset, small_catalog: Catalog) -> None:
        model = SurpriseRecommender().fit(small_dataset.ratings, small_catalog)
        arrays = KNNBaselineArrays.from_surprise(model)
        for user in np.unique(small_dataset.ratings["user_id"])[:10]:
            index = model.data.users.index(int(user))
            history, values = model.data.history(index)
            targets = np.arange(len(model.item_ids))
            ours = arrays.predict(float(arrays.user_bias[index]), history, values, targets)
            np.testing.assert_allclose(ours, model.score(int(user), model.item_ids), rtol=1e-5, atol=1e-5)


class TestHistories:
    def test_liked_movies_become_five_star_ratings(self) -> None:
        assert history_from_liked([3, 1, 3]) == [(3, 5.0), (1, 5.0)]

    def test_repeated_movie_keeps_last_rating(self) -> None:
        ids, ratings = normalise_history([(1, 2.0), (2, 4.0), (1, 5.0)])
        assert dict(zip(ids.tolist(), ratings.tolist(), strict=True)) == {1: 5.0, 2: 4.0}

    def test_rejects_non_numbers(self) -> None:
        with pytest.raises(ValueError, match="not a number"):
            normalise_history([(1, float("nan"))])

    def test_resolves_titles_and_reports_misses(self, small_dataset: Dataset) -> None:
        index = TitleIndex.from_movies(small_dataset.movies)
        title = str(small_dataset.movies["title"].iloc[0])
        resolved = resolve_liked_titles([title.lower(), "zzzz qqqq xxxx"], index)
        assert resolved.movie_ids == [int(small_dataset.movies["movie_id"].iloc[0])]
        assert resolved.unmatched == ["zzzz qqqq xxxx"]
