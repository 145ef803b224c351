from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.datasets import Dataset, generate
from ml.datasets.synthetic import GENRES


@pytest.fixture(scope="module")
def synth() -> Dataset:
    return generate(200_000, seed=3)


class TestGenerate:
    def test_is_deterministic_for_a_seed(self) -> None:
        first, second = generate(20_000, seed=11), generate(20_000, seed=11)
        for table in ("ratings", "movies", "users", "genres", "people", "credits"):
            pd.testing.assert_frame_equal(getattr(first, table), getattr(second, table))
        assert not generate(20_000, seed=12).ratings.equals(first.ratings)

    def test_follows_contract(self, synth: Dataset, check_contract) -> None:
        check_contract(synth)

    def test_shape_scales_like_movielens(self, synth: Dataset) -> None:
        assert len(synth.ratings) == 200_000
        assert synth.ratings["user_id"].nunique() == len(synth.users) == 2_000
        assert 2_000 < len(synth.movies) < 4_000
        per_user = synth.ratings.groupby("user_id").size()
        assert per_user.min() >= 20
        assert per_user.median() < per_user.mean() < per_user.max() / 5  # heavy tail

    def test_pairs_are_unique_and_ids_are_known(self, synth: Dataset) -> None:
        ratings = synth.ratings
        assert not ratings.duplicated(["user_id", "movie_id"]).any()
        assert ratings["movie_id"].isin(synth.movies["movie_id"]).all()
        assert ratings["user_id"].isin(synth.users["user_id"]).all()
        assert synth.movies["movie_id"].is_unique

    def test_popularity_is_skewed(self, synth: Dataset) -> None:
        counts = synth.ratings["movie_id"].value_counts().to_numpy()
        top_decile = counts[: len(synth.movies) // 10].sum()
        assert top_decile / len(synth.ratings) > 0.4

    def test_ratings_look_like_movielens(self, synth: Dataset) -> None:
        stars = synth.ratings["rating"]
        assert set(stars.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
        assert stars.mean() == pytest.approx(3.53, abs=0.05)
        assert (stars.value_counts(normalize=True).idxmax()) == 4.0

    def test_ratings_carry_user_and_item_signal(self, synth: Dataset) -> None:
        # Item means on half the users predict the other half far better than chance.
        ratings = synth.ratings
        half = ratings["user_id"] % 2 == 0
        means = [ratings[mask].groupby("movie_id")["rating"].mean() for mask in (half, ~half)]
        joined = pd.concat(means, axis=1, join="inner").dropna()
        assert float(np.corrcoef(joined.to_numpy(), rowvar=False)[0, 1]) > 0.5

    def test_timestamps_span_about_two_years(self, synth: Dataset) -> None:
        timestamps = synth.ratings["timestamp"].to_numpy()
        assert 1.5 * 365 * 86_400 < int(timestamps.max() - timestamps.min()) <= 2 * 365 * 86_400

    def test_movies_have_titles_years_genres_and_people(self, synth: Dataset) -> None:
        movies = synth.movies
        assert movies["title"].str.len().gt(3).all()
        assert movies["year"].between(1920, 2016).all()
        per_movie = synth.genres.groupby("movie_id").size()
        assert len(per_movie) == len(movies)
        assert per_movie.between(1, 3).all()
        assert set(synth.genres["genre"]) <= set(GENRES)
        roles = synth.credits.groupby("movie_id")["role"].agg(set)
        assert len(roles) == len(movies)
        assert all({"director", "writer", "actor"} <= r for r in roles)
        assert set(synth.credits["person_id"]) <= set(synth.people["person_id"])
        assert synth.people["name"].notna().all()

    def test_genres_follow_what_users_like(self, synth: Dataset) -> None:
        # A user's taste for a genre (rating minus user and movie means) shows on one half of the
        # genre's movies and again on the other half: genres carry a real content signal.
        ratings = synth.ratings
        mean = float(ratings["rating"].mean())
        residual = (
            ratings["rating"]
            - ratings.groupby("user_id")["rating"].transform("mean")
            - ratings.groupby("movie_id")["rating"].transform("mean")
            + mean
        )
        rows = ratings.assign(residual=residual, half=ratings["movie_id"] % 2).merge(
            synth.genres, on="movie_id"
        )
        taste = rows.groupby(["user_id", "genre", "half"])["residual"].agg(["mean", "size"])
        halves = taste[taste["size"] >= 5]["mean"].unstack("half").dropna()
        assert float(np.corrcoef(halves[0], halves[1])[0, 1]) > 0.15

    def test_people_repeat_across_movies(self, synth: Dataset) -> None:
        directors = synth.credits[synth.credits["role"] == "director"]
        assert directors["person_id"].value_counts().iloc[0] > 3

    def test_explicit_sizes(self) -> None:
        dataset = generate(5_000, n_users=50, n_movies=120, seed=1)
        assert dataset.ratings["user_id"].nunique() == 50
        assert dataset.ratings["movie_id"].max() <= 120
        assert len(dataset.ratings) == 5_000
        assert not dataset.ratings.duplicated(["user_id", "movie_id"]).any()

    def test_nearly_full_matrix(self) -> None:
        ratings = generate(95, n_users=10, n_movies=10).ratings
        assert len(ratings) == 95
        assert not ratings.duplicated(["user_id", "movie_id"]).any()

    @pytest.mark.parametrize(
        ("n_ratings", "sizes"), [(0, {}), (101, {"n_users": 10, "n_movies": 10}), (10, {"n_users": 0})]
    )
    def test_rejects_impossible_sizes(self, n_ratings: int, sizes: dict[str, int]) -> None:
        with pytest.raises(ValueError):
            generate(n_ratings, **sizes)

    def test_rating_range_and_types(self, synth: Dataset) -> None:
        ratings = synth.ratings
        assert ratings["rating"].between(0.5, 5.0).all()
        assert ratings["rating"].dtype == np.float32
