"""Who visits when, and what they would like: the replay plan, a pure function of the ratings and a seed.

Each replayed MovieLens user's ratings are split by time. The older part is their **past**: it is
given to the API (as ratings of a new account) so the models know their taste. The newer part is
their **future**, held out: a recommended movie is clicked only if the user really rated it 4 stars
or more there. So a variant earns clicks only by recommending movies people went on to love, and
the better recommender wins the A/B test for the reason it would win offline.

The behaviour model, deliberately simple and written down here:

* users arrive uniformly over the `days` before the replay ends and come back for up to
  `MAX_SESSIONS` sessions on later days, at evening-heavy times of day;
* each session shows one list of `k` movies (all logged as impressions);
* a user examines position i with probability ``EXAMINE_FIRST · EXAMINE_DECAY**i`` (people look at
  the top of a list more) and clicks an examined movie only if it is in their future with >= 4 stars;
* a click is followed by a view and, two hours later, a rating with the user's true stars.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

LIKED = 4.0
"""Held-out ratings at or above this many stars are what a user would click."""
FUTURE_FRACTION = 0.3
"""Share of each user's ratings (the newest) held out as their future."""
MAX_HISTORY = 25
"""At most this many of the newest past ratings are sent to the API per user (each is a request)."""
MIN_RATINGS = 20
"""Users with fewer ratings are not replayed (too little past and future to split)."""
MAX_SESSIONS = 4
EXAMINE_FIRST = 0.95
EXAMINE_DECAY = 0.85
RATING_DELAY = timedelta(hours=2)
"""A rating comes this long after the click (the movie is watched first)."""
# Relative weight of each hour of the day (UTC) for a session start: quiet nights, busy evenings.
HOURLY_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 5, 5, 6, 7, 9, 11, 12, 11, 8, 4)


@dataclass(frozen=True)
class ReplayUser:
    """One MovieLens user as the replay plays them.

    Attributes:
        source_id: their MovieLens user id.
        past: (movie_id, stars) given to the API before the first session, oldest first.
        future: movie_id -> stars of the held-out ratings.
        sessions: when each visit starts, in order.
    """

    source_id: int
    past: tuple[tuple[int, float], ...]
    future: dict[int, float] = field(repr=False)
    sessions: tuple[datetime, ...]

    @property
    def liked_future(self) -> frozenset[int]:
        """Held-out movies rated `LIKED` or more: the only ones this user clicks."""
        return frozenset(m for m, stars in self.future.items() if stars >= LIKED)


def examine_probability(position: int) -> float:
    """Chance a user looks at the movie at 0-based `position` of a list."""
    return EXAMINE_FIRST * EXAMINE_DECAY**position


def clicks_for(
    user: ReplayUser, movie_ids: Sequence[int], clicked: set[int], rng: random.Random
) -> list[int]:
    """Positions the user clicks in a list: examined, liked in their future, not clicked before.

    Args:
        user: the replayed user.
        movie_ids: the list, best first.
        clicked: movies this user already clicked (updated in place).
        rng: the user's random stream.
    """
    liked = user.liked_future
    positions = []
    for position, movie_id in enumerate(movie_ids):
        examined = rng.random() < examine_probability(position)
        if examined and movie_id in liked and movie_id not in clicked:
            clicked.add(movie_id)
            positions.append(position)
    return positions


def _split(
    group: pd.DataFrame, future_fraction: float, max_history: int
) -> tuple[list[tuple[int, float]], dict[int, float]]:
    ordered = group.sort_values(["timestamp", "movie_id"], kind="stable")
    n_future = max(1, round(len(ordered) * future_fraction))
    past = ordered.iloc[: len(ordered) - n_future].tail(max_history)
    future = ordered.iloc[len(ordered) - n_future :]
    return (
        [(int(m), float(r)) for m, r in zip(past["movie_id"], past["rating"], strict=True)],
        {int(m): float(r) for m, r in zip(future["movie_id"], future["rating"], strict=True)},
    )


def _session_times(rng: random.Random, days: int, end: datetime) -> tuple[datetime, ...]:
    """Session starts: an arrival day, then returns on later days, all before `end - RATING_DELAY`."""
    latest = end - RATING_DELAY - timedelta(hours=1)
    start_of_window = (latest - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    arrival = rng.randrange(days)
    visits = min(1 + _poisson(rng, 1.2), MAX_SESSIONS, days - arrival)
    later = sorted(rng.sample(range(arrival + 1, days), visits - 1)) if visits > 1 else []
    times: list[datetime] = []
    for day in (arrival, *later):
        hour = rng.choices(range(24), weights=HOURLY_WEIGHTS)[0]
        moment = start_of_window + timedelta(
            days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60)
        )
        times.append(min(moment, latest - timedelta(minutes=len(times))))
    return tuple(sorted(times))


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; small means only."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def build_plan(
    ratings: pd.DataFrame,
    *,
    users: int,
    days: int,
    seed: int,
    end: datetime,
    future_fraction: float = FUTURE_FRACTION,
    max_history: int = MAX_HISTORY,
    min_ratings: int = MIN_RATINGS,
) -> list[ReplayUser]:
    """Pick `users` MovieLens users at random and schedule their visits over the `days` before `end`.

    Args:
        ratings: columns user_id, movie_id, rating, timestamp (a `ml.datasets.Dataset.ratings`).
        users: how many to replay (fewer if fewer qualify).
        days: length of the simulated period.
        seed: the same seed gives the same users, splits and schedule.
        end: the simulated period ends here (the replay's start, normally now).
        future_fraction: newest share of each user's ratings held out.
        max_history: newest past ratings sent per user.
        min_ratings: users with fewer ratings are skipped.

    Returns:
        The users, in the order of their first session.

    Raises:
        ValueError: `users` or `days` is below 1.
    """
    if users < 1 or days < 1:
        raise ValueError("users and days must be at least 1")
    counts = ratings.groupby("user_id").size()
    eligible = np.sort(counts[counts >= min_ratings].index.to_numpy())
    chosen = np.random.default_rng(seed).permutation(eligible)[:users]
    by_user = ratings[ratings["user_id"].isin(chosen)].groupby("user_id")
    plan = []
    for source_id in chosen:
        past, future = _split(by_user.get_group(source_id), future_fraction, max_history)
        rng = random.Random(f"{seed}:{source_id}")
        plan.append(ReplayUser(int(source_id), tuple(past), future, _session_times(rng, days, end)))
    return sorted(plan, key=lambda user: (user.sessions[0], user.source_id))


def held_out_pairs(
    ratings: pd.DataFrame,
    *,
    users: int,
    seed: int,
    future_fraction: float = FUTURE_FRACTION,
    min_ratings: int = MIN_RATINGS,
) -> pd.DataFrame:
    """The (user_id, movie_id) pairs a replay with these arguments holds out as the users' future.

    The replayed accounts are new, but the MovieLens users they copy stay in the training data with
    their whole history, future included. Leaving these pairs out of the data the models are trained
    on makes the replay leak-free; they do not depend on `days` or on when the replay runs.
    """
    plan = build_plan(
        ratings,
        users=users,
        days=1,
        seed=seed,
        end=datetime(2000, 1, 1),
        future_fraction=future_fraction,
        min_ratings=min_ratings,
    )
    pairs = [(user.source_id, movie) for user in plan for movie in user.future]
    return pd.DataFrame(pairs, columns=["user_id", "movie_id"])
