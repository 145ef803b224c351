import numpy as np
import pandas as pd
import pytest

from ml.evaluation import (
    Split,
    drop_unseen,
    kfold,
    temporal_holdout,
    unseen_mask,
    user_holdout,
    validation_split,
)


def make_ratings(n_users: int = 30, seed: int = 0) -> pd.DataFrame:
    """User u (1-based) has u ratings of distinct movies; timestamps repeat within a user."""
    rng = np.random.default_rng(seed)
    counts = np.arange(1, n_users + 1)
    users = np.repeat(counts, counts)
    movies = np.concatenate([rng.choice(np.arange(1, 201), size=n, replace=False) for n in counts])
    return pd.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "movie_id": movies.astype(np.int64),
            "rating": (rng.integers(1, 11, len(users)) / 2).astype(np.float32),
            "timestamp": rng.integers(1_000, 1_020, len(users)).astype(np.int64),
        }
    )


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return make_ratings()


def shuffled(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings.sample(frac=1.0, random_state=5)


def assert_partition(split: Split, ratings: pd.DataFrame) -> None:
    """Train and test are disjoint and together give back the input, with its dtypes."""
    assert split.train.index.intersection(split.test.index).empty
    union = pd.concat([split.train, split.test]).sort_index()
    pd.testing.assert_frame_equal(union, ratings.sort_index())


def per_user(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby("user_id").size().reindex(range(1, 31), fill_value=0)


class TestUserHoldout:
    def test_partitions_the_ratings(self, ratings) -> None:
        assert_partition(user_holdout(ratings), ratings)

    def test_holds_out_the_rounded_fraction_per_user(self, ratings) -> None:
        split = user_holdout(ratings, test_fraction=0.2)

        held_out = per_user(split.test)
        # round half up of 0.2 n, at most n - 1:
        #   n = 1 -> 0.2 -> 0;  2 -> 0.4 -> 0;  3 -> 0.6 -> 1;  7 -> 1.4 -> 1;  8 -> 1.6 -> 2
        #   n = 12 -> 2.4 -> 2;  13 -> 2.6 -> 3;  30 -> 6
        expected = {1: 0, 2: 0, 3: 1, 7: 1, 8: 2, 12: 2, 13: 3, 30: 6}
        assert {n: held_out[n] for n in expected} == expected
        assert split.name == "user_holdout(test_fraction=0.2, min_train=1)"
        assert split.seed == 42

    def test_halves_round_up(self, ratings) -> None:
        # 0.5 n for odd n: n = 5 -> 2.5 -> 3, capped at n - 1 = 4;  n = 1 -> 0.5 -> 1, capped at 0
        held_out = per_user(user_holdout(ratings, test_fraction=0.5).test)

        assert (held_out[5], held_out[1], held_out[2]) == (3, 0, 1)

    def test_min_train_caps_the_test_share(self, ratings) -> None:
        # 0.9 n rounded, capped at n - 3: n = 10 -> 9 -> 7;  n = 3 -> 3 -> 0 (the user stays whole)
        split = user_holdout(ratings, test_fraction=0.9, min_train=3)

        held_out = per_user(split.test)
        assert (held_out[10], held_out[3]) == (7, 0)
        assert (per_user(split.train) >= np.minimum(3, np.arange(1, 31))).all()

    def test_is_deterministic_and_independent_of_row_order(self, ratings) -> None:
        first = user_holdout(ratings, seed=1)

        assert first.test.index.equals(user_holdout(ratings, seed=1).test.index)
        assert set(user_holdout(shuffled(ratings), seed=1).test.index) == set(first.test.index)
        assert set(user_holdout(ratings, seed=2).test.index) != set(first.test.index)

    def test_picks_movies_at_random(self) -> None:
        # Two users who rated the same 1000 movies hold out 200 each. Uniform picks have a mean
        # id of 500.5 with a standard error of about 288 / sqrt(200) * sqrt(0.8) = 18.
        movies = np.arange(1000, dtype=np.int64)
        ratings = pd.DataFrame(
            {"user_id": np.repeat(np.array([1, 2], dtype=np.int64), 1000), "movie_id": np.tile(movies, 2)}
        )

        test = user_holdout(ratings, test_fraction=0.2).test
        first, second = (set(test.loc[test.user_id == user, "movie_id"]) for user in (1, 2))
        assert len(first) == len(second) == 200
        assert all(abs(np.mean(list(picked)) - 500.5) < 55 for picked in (first, second))
        assert len(first & second) < 80  # independent picks share 40 on average

    def test_any_int64_ids(self, ratings) -> None:
        wide = ratings.assign(user_id=ratings.user_id * 2**40 - 2**62, movie_id=-ratings.movie_id)

        split = user_holdout(wide)

        assert_partition(split, wide)
        assert split.test.groupby("user_id").size().sum() == len(user_holdout(ratings).test)

    def test_empty_ratings(self, ratings) -> None:
        split = user_holdout(ratings.iloc[:0])

        assert split.train.empty and split.test.empty

    def test_rejects_bad_parameters(self, ratings) -> None:
        with pytest.raises(ValueError, match="test_fraction must be in"):
            user_holdout(ratings, test_fraction=1.0)
        with pytest.raises(ValueError, match="min_train"):
            user_holdout(ratings, min_train=-1)
        with pytest.raises(ValueError, match="lack the columns"):
            user_holdout(ratings.drop(columns="movie_id"))
        with pytest.raises(ValueError, match="must hold integers"):
            user_holdout(ratings.astype({"movie_id": "float64"}))


class TestTemporalHoldout:
    def test_holds_out_each_users_latest_ratings(self, ratings) -> None:
        split = temporal_holdout(ratings, n_last=2)

        assert_partition(split, ratings)
        held_out = per_user(split.test)
        # n_last = 2 capped at n - 1: n = 1 -> 0, 2 -> 1, 3 and more -> 2
        assert (held_out[1], held_out[2], held_out[3], held_out[30]) == (0, 1, 2, 2)
        latest_test = split.test.groupby("user_id")["timestamp"].min()
        latest_train = split.train.groupby("user_id")["timestamp"].max()
        assert (latest_test >= latest_train.reindex(latest_test.index)).all()

    def test_breaks_timestamp_ties_by_larger_movie_id(self) -> None:
        ratings = pd.DataFrame(
            {
                "user_id": np.array([1, 1, 1, 1, 1], dtype=np.int64),
                "movie_id": np.array([50, 10, 40, 30, 20], dtype=np.int64),
                "timestamp": np.array([100, 300, 300, 300, 200], dtype=np.int64),
            }
        )
        # latest first: (300, 40), (300, 30), (300, 10), (200, 20), (100, 50)
        assert set(temporal_holdout(ratings, n_last=2).test["movie_id"]) == {40, 30}
        assert set(temporal_holdout(ratings, n_last=4).test["movie_id"]) == {40, 30, 10, 20}

    @pytest.mark.parametrize("movie_offset", [0, 2**62], ids=["narrow-ids", "ids-spanning-2**62"])
    def test_agrees_with_a_full_sort(self, ratings, movie_offset) -> None:
        # Half the movie ids shifted by 2**62 do not fit beside the user code: ranks are used.
        ratings = ratings.assign(movie_id=ratings.movie_id + movie_offset * (ratings.movie_id % 2))
        expected = ratings.sort_values(["user_id", "timestamp", "movie_id"]).groupby("user_id").tail(3)

        test = temporal_holdout(ratings, n_last=3, min_train=0).test

        assert set(test.index) == set(expected.index)

    def test_leave_last_one_out_by_default(self, ratings) -> None:
        split = temporal_holdout(ratings)

        assert split.name == "temporal_holdout(n_last=1, min_train=1)"
        assert split.seed is None
        assert (per_user(split.test) == np.r_[0, np.ones(29, dtype=int)]).all()

    def test_fraction(self, ratings) -> None:
        # as in user_holdout: n = 8 -> 1.6 -> 2;  n = 13 -> 2.6 -> 3
        held_out = per_user(temporal_holdout(ratings, fraction=0.2).test)

        assert (held_out[8], held_out[13]) == (2, 3)

    def test_independent_of_row_order(self, ratings) -> None:
        expected = set(temporal_holdout(ratings, n_last=3).test.index)

        assert set(temporal_holdout(shuffled(ratings), n_last=3).test.index) == expected

    def test_rejects_bad_parameters(self, ratings) -> None:
        with pytest.raises(ValueError, match="not both"):
            temporal_holdout(ratings, n_last=1, fraction=0.2)
        with pytest.raises(ValueError, match="n_last must be at least 1"):
            temporal_holdout(ratings, n_last=0)
        with pytest.raises(ValueError, match="timestamp"):
            temporal_holdout(ratings.drop(columns="timestamp"))


class TestKFold:
    def test_every_row_is_tested_exactly_once(self, ratings) -> None:
        splits = list(kfold(ratings, n_splits=5))

        tested = np.concatenate([split.test.index.to_numpy() for split in splits])
        assert np.array_equal(np.sort(tested), np.sort(ratings.index.to_numpy()))
        for split in splits:
            assert_partition(split, ratings)

    def test_fold_sizes_follow_surprise(self, ratings) -> None:
        # 465 ratings in 4 folds: 465 = 4 * 116 + 1, so the first fold gets one more
        sizes = [len(split.test) for split in kfold(ratings, n_splits=4)]

        assert sizes == [117, 116, 116, 116]

    def test_is_deterministic_and_independent_of_row_order(self, ratings) -> None:
        first = [set(split.test.index) for split in kfold(ratings, seed=3)]

        assert [set(split.test.index) for split in kfold(shuffled(ratings), seed=3)] == first
        assert [set(split.test.index) for split in kfold(ratings, seed=4)] != first

    def test_names(self, ratings) -> None:
        assert [split.name for split in kfold(ratings, n_splits=2)] == [
            "kfold(n_splits=2, fold=0)",
            "kfold(n_splits=2, fold=1)",
        ]

    def test_rejects_bad_n_splits_at_once(self, ratings) -> None:
        with pytest.raises(ValueError, match="n_splits must be between 2"):
            kfold(ratings, n_splits=1)
        with pytest.raises(ValueError, match="n_splits must be between 2"):
            kfold(ratings.iloc[:3], n_splits=4)


class TestValidationSplit:
    def test_user_protocol_splits_the_train_frame(self, ratings) -> None:
        outer = user_holdout(ratings)

        inner = validation_split(outer.train)

        assert_partition(inner, outer.train)
        assert inner.name == "validation/user_holdout(test_fraction=0.2, min_train=1)"
        # a user with 30 ratings kept 24 in train; 0.2 * 24 = 4.8 -> 5 validation ratings
        assert (inner.test.user_id == 30).sum() == 5

    def test_temporal_protocol(self, ratings) -> None:
        outer = temporal_holdout(ratings, n_last=2)

        inner = validation_split(outer.train, protocol="temporal", n_last=1)

        assert_partition(inner, outer.train)
        assert inner.name == "validation/temporal_holdout(n_last=1, min_train=1)"
        assert (inner.test.groupby("user_id").size() == 1).all()

    def test_rejects_mixed_parameters(self, ratings) -> None:
        with pytest.raises(ValueError, match="temporal protocol only"):
            validation_split(ratings, n_last=1)
        with pytest.raises(ValueError, match="unknown protocol"):
            validation_split(ratings, protocol="global")  # type: ignore[arg-type]


class TestUnseen:
    def test_flags_and_drops_pairs_unknown_to_train(self) -> None:
        train = pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [10, 20, 10]})
        test = pd.DataFrame({"user_id": [1, 2, 3, 1], "movie_id": [20, 30, 10, 10]})
        split = Split(train, test, "hand")

        # (1, 20) known; (2, 30) new movie; (3, 10) new user; (1, 10) known
        assert unseen_mask(split).tolist() == [False, True, True, False]
        dropped = drop_unseen(split)
        assert dropped.test.index.tolist() == [0, 3]
        assert dropped.name == "hand+drop_unseen"
        assert dropped.train is train
