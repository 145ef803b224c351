"""The replay plan: who is replayed, how their ratings are split, when they visit, what they click."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from services.simulate.plan import (
    LIKED,
    RATING_DELAY,
    ReplayUser,
    build_plan,
    clicks_for,
    examine_probability,
    held_out_pairs,
)

END = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    """40 users with 20 to 59 ratings each, timestamps increasing with the movie id."""
    rng = random.Random(5)
    rows = []
    for user in range(1, 41):
        for movie in rng.sample(range(1, 300), 19 + user):
            rows.append((user, movie, float(rng.randint(1, 5)), 1_000_000 + movie * 100 + user))
    rows.append((99, 1, 5.0, 1))  # a user with a single rating is never replayed
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "timestamp"])


class TestBuildPlan:
    def test_same_seed_same_plan(self, ratings: pd.DataFrame) -> None:
        first = build_plan(ratings, users=10, days=7, seed=3, end=END)
        again = build_plan(ratings, users=10, days=7, seed=3, end=END)
        other = build_plan(ratings, users=10, days=7, seed=4, end=END)
        assert first == again
        assert {u.source_id for u in first} != {u.source_id for u in other}

    def test_skips_users_with_too_few_ratings(self, ratings: pd.DataFrame) -> None:
        plan = build_plan(ratings, users=100, days=7, seed=3, end=END)
        assert len(plan) == 40
        assert 99 not in {u.source_id for u in plan}

    def test_future_is_the_newest_part(self, ratings: pd.DataFrame) -> None:
        for user in build_plan(ratings, users=40, days=7, seed=3, end=END, max_history=1000):
            own = ratings[ratings["user_id"] == user.source_id]
            stamp = dict(zip(own["movie_id"], own["timestamp"], strict=True))
            assert max(stamp[m] for m, _ in user.past) < min(stamp[m] for m in user.future)
            assert len(user.future) == round(0.3 * len(own))
            assert len(user.past) + len(user.future) == len(own)

    def test_history_is_capped_to_the_newest_past_ratings(self, ratings: pd.DataFrame) -> None:
        for user in build_plan(ratings, users=40, days=7, seed=3, end=END, max_history=5):
            assert len(user.past) == 5
            full = build_plan(ratings, users=40, days=7, seed=3, end=END, max_history=1000)
            uncapped = next(u for u in full if u.source_id == user.source_id)
            assert user.past == uncapped.past[-5:]

    def test_true_ratings_are_kept(self, ratings: pd.DataFrame) -> None:
        user = build_plan(ratings, users=1, days=7, seed=3, end=END)[0]
        own = ratings[ratings["user_id"] == user.source_id].set_index("movie_id")["rating"]
        assert all(own[m] == stars for m, stars in user.future.items())
        assert all(own[m] == stars for m, stars in user.past)

    def test_sessions_fall_inside_the_period_on_distinct_days(self, ratings: pd.DataFrame) -> None:
        plan = build_plan(ratings, users=40, days=7, seed=3, end=END)
        for user in plan:
            assert list(user.sessions) == sorted(user.sessions)
            assert 1 <= len(user.sessions) <= 4
            assert all(END - timedelta(days=8) <= s <= END - RATING_DELAY for s in user.sessions)
            assert len({s.date() for s in user.sessions}) == len(user.sessions)
        assert sum(len(u.sessions) > 1 for u in plan) > 5  # people come back
        assert [u.sessions[0] for u in plan] == sorted(u.sessions[0] for u in plan)

    def test_evenings_are_busier_than_nights(self, ratings: pd.DataFrame) -> None:
        hours = [s.hour for u in build_plan(ratings, users=40, days=30, seed=1, end=END) for s in u.sessions]
        evening = sum(18 <= h <= 22 for h in hours)
        night = sum(1 <= h <= 5 for h in hours)
        assert evening > 2 * night

    def test_held_out_pairs_are_the_futures_whenever_the_replay_runs(self, ratings: pd.DataFrame) -> None:
        pairs = held_out_pairs(ratings, users=12, seed=3)
        plan = build_plan(ratings, users=12, days=9, seed=3, end=END)
        expected = {(u.source_id, m) for u in plan for m in u.future}
        assert set(zip(pairs["user_id"], pairs["movie_id"], strict=True)) == expected

    def test_rejects_nonsense(self, ratings: pd.DataFrame) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            build_plan(ratings, users=0, days=7, seed=3, end=END)


class TestClicks:
    user = ReplayUser(
        source_id=1, past=((1, 5.0),), future={10: 5.0, 11: 4.0, 12: 3.0, 13: 1.0}, sessions=(END,)
    )

    def test_only_movies_liked_in_the_future(self) -> None:
        rng = random.Random(0)
        clicked: set[int] = set()
        for _ in range(50):
            positions = clicks_for(self.user, [12, 13, 10, 11, 99], clicked, rng)
            assert all([12, 13, 10, 11, 99][p] in {10, 11} for p in positions)
        assert clicked == {10, 11}
        assert self.user.liked_future == {m for m, s in self.user.future.items() if s >= LIKED}

    def test_never_clicks_the_same_movie_twice(self) -> None:
        clicked: set[int] = set()
        rng = random.Random(1)
        total = sum(len(clicks_for(self.user, [10, 11], clicked, rng)) for _ in range(20))
        assert total == 2

    def test_top_positions_are_examined_more(self) -> None:
        assert examine_probability(0) == pytest.approx(0.95)
        assert examine_probability(9) < examine_probability(0) / 3
        rng = random.Random(2)
        first = sum(bool(clicks_for(self.user, [10], set(), rng)) for _ in range(2000))
        tenth = sum(
            bool(clicks_for(self.user, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], set(), rng)) for _ in range(2000)
        )
        assert first / 2000 == pytest.approx(0.95, abs=0.03)
        assert tenth / 2000 == pytest.approx(examine_probability(9), abs=0.03)
