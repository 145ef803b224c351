"""MovieLens-shaped synthetic data of any size, for tests, benchmarks and load tests.

The generator mimics what matters to recommenders in MovieLens: Zipf item popularity,
heavy-tailed user activity with a floor (MovieLens keeps users with at least 20 ratings), star
ratings drawn from a latent-factor model and mapped onto the ML-100K star distribution, genres
that follow the item factors, and people who keep working in the same genres. Everything is
vectorised; the only loops run over a handful of sampling rounds or batches.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ml.datasets.base import Dataset
from ml.datasets.grouplens import ML100K_GENRES, empty_table

# The 18 named ML-100K genres ("unknown" is left out) and how often each is given (ML-100K shares).
GENRES = ML100K_GENRES[1:]
_GENRE_SHARE = np.array(
    [.087, .047, .015, .042, .175, .038, .017, .251, .008, .008, .032, .019, .021, .085, .035, .087, .025, .009]
)  # fmt: skip
# ML-100K star shares for 1..5 stars (mean 3.53).
_STAR_SHARE = np.array([0.0611, 0.1137, 0.2715, 0.3417, 0.2120])
_N_FACTORS = 8
# Zipf exponent of item popularity: 0.9 puts ~45% of ML-100K-sized data on the top 10% of movies,
# close to ML-100K's 43%.
_ZIPF_EXPONENT = 0.9
# ML-100K: at least 20 ratings per user, median 65, mean 106.
_MIN_USER_RATINGS = 20
_USER_ACTIVITY_SIGMA = 1.1
_START = 1_420_070_400  # 2015-01-01
_SPAN = 2 * 365 * 86_400
# Sampling rounds that redraw colliding items before the draw is mixed with a uniform one.
_POPULARITY_ROUNDS = 3
_MAX_ROUNDS = 200
# Users rating more than this share of the catalogue are sampled exactly (see _dense_items).
_DENSE_SHARE = 1 / 8
_DENSE_BATCH_CELLS = 4_000_000

_OCCUPATIONS = (
    "student", "other", "educator", "administrator", "engineer", "programmer", "librarian", "writer",
    "executive", "scientist", "artist", "technician", "marketing", "entertainment", "healthcare",
    "retired", "lawyer", "salesman", "none", "homemaker", "doctor",
)  # fmt: skip
_OCCUPATION_COUNTS = np.array(
    [196, 105, 95, 79, 67, 66, 51, 45, 32, 31, 28, 27, 26, 18, 16, 14, 12, 12, 9, 7, 7]
)
_TITLE_ADJECTIVES = np.array(
    [
        "Silent", "Broken", "Last", "Golden", "Hidden", "Crimson", "Endless", "Lost", "Midnight", "Wild",
        "Frozen", "Burning", "Secret", "Final", "Dark", "Electric", "Velvet", "Iron", "Distant", "Hollow",
        "Savage", "Quiet", "Restless", "Bitter", "Brave", "Shattered", "Northern", "Painted", "Lonely", "Bright",
    ]
)  # fmt: skip
_TITLE_NOUNS = np.array(
    [
        "River", "Kingdom", "Promise", "Horizon", "Garden", "Empire", "Summer", "Witness", "Harbor", "Road",
        "Stranger", "Mirror", "Storm", "Protocol", "Valley", "Letter", "Machine", "Island", "Ghost", "Crown",
        "Frontier", "Signal", "Heart", "Shadow", "City", "Winter", "Voyage", "Orchard", "Station", "Legacy",
    ]
)  # fmt: skip
_TITLE_PLACES = np.array(
    [
        "Paris",
        "the North",
        "Avalon",
        "Brooklyn",
        "the Desert",
        "Tomorrow",
        "Havana",
        "the Moon",
        "Berlin",
        "Eden",
    ]
)
_FIRST_NAMES = np.array(
    [
        "Anna", "Ben", "Clara", "David", "Elena", "Frank", "Grace", "Hugo", "Iris", "Jack", "Kate", "Leo",
        "Maya", "Nick", "Olga", "Paul", "Rosa", "Sam", "Tara", "Victor", "Wendy", "Yusuf", "Zoe", "Marco",
    ]
)  # fmt: skip
_LAST_NAMES = np.array(
    [
        "Abbott", "Brenner", "Castillo", "Dunn", "Eriksen", "Fischer", "Garcia", "Hayes", "Ivanova", "Jensen",
        "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Thorne",
        "Ueda", "Vargas", "Walsh", "Young",
    ]
)  # fmt: skip
# People per movie: one director, one writer and this many actors, drawn from genre pools.
_ACTORS_PER_MOVIE = 3


def generate(
    n_ratings: int,
    *,
    seed: int = 0,
    n_users: int | None = None,
    n_movies: int | None = None,
) -> Dataset:
    """Generate a MovieLens-shaped dataset.

    By default users and movies scale like MovieLens: about 100 ratings per user, and a catalogue
    of about 1,700 movies at 100K ratings growing as n_ratings**0.6 (about 27,000 at 10M).

    Args:
        n_ratings: Number of ratings; (user, movie) pairs are unique.
        seed: Seed of the random generator; equal arguments give equal datasets.
        n_users: Number of users (each rates at least one movie if n_ratings >= n_users).
        n_movies: Number of movies (the least popular may have no rating).

    Returns:
        Ratings of 1-5 whole stars (mean about 3.5) with timestamps spread over two years,
        users with demographics, movies with titles, years, 1-3 genres, and named people credits.

    Raises:
        ValueError: If a count is not positive, or n_ratings exceeds n_users * n_movies.
    """
    if n_ratings < 1:
        raise ValueError(f"n_ratings must be positive, got {n_ratings}.")
    users_count, movies_count = _sizes(n_ratings, n_users, n_movies)
    rng = np.random.default_rng(seed)

    popularity = _Popularity(movies_count, rng)
    counts = _user_counts(n_ratings, users_count, movies_count, rng)
    user_index, item_index = _sample_pairs(counts, popularity, rng)

    user_factors = rng.normal(0.0, 1.0 / math.sqrt(_N_FACTORS), (users_count, _N_FACTORS)).astype(np.float32)
    item_factors = rng.normal(0.0, 1.0 / math.sqrt(_N_FACTORS), (movies_count, _N_FACTORS)).astype(np.float32)
    user_bias = rng.normal(0.0, 0.4, users_count).astype(np.float32)
    log_pop = np.log(popularity.weights)
    # Popular movies are rated higher on average, as in MovieLens.
    item_bias = (
        rng.normal(0.0, 0.45, movies_count) + 0.2 * (log_pop - log_pop.mean()) / log_pop.std()
    ).astype(np.float32)
    stars = _stars(user_index, item_index, user_factors, item_factors, user_bias, item_bias, rng)
    timestamps = _timestamps(user_index, users_count, rng)

    # Ids are 1-based; ratings come sorted by user then movie, as in ml-25m's ratings.csv.
    movie_ids = np.arange(1, movies_count + 1, dtype=np.int64)
    ratings = pd.DataFrame(
        {"user_id": user_index + 1, "movie_id": item_index + 1, "rating": stars, "timestamp": timestamps}
    )
    genre_index = _genres(item_factors, rng)
    movies = _movies(movie_ids, rng)
    genres = pd.DataFrame(
        {
            "movie_id": movie_ids[genre_index[0]],
            "genre": pd.Series(np.asarray(GENRES, dtype=object)[genre_index[1]], dtype="str"),
        }
    ).sort_values(["movie_id", "genre"], ignore_index=True)
    people, credits = _people_and_credits(movie_ids, genre_index, rng)
    return Dataset(
        name=f"synth-{n_ratings}-seed{seed}",
        ratings=ratings,
        movies=movies,
        users=_users(users_count, rng),
        genres=genres,
        people=people,
        credits=credits,
        tags=empty_table("tags"),
    )


def _sizes(n_ratings: int, n_users: int | None, n_movies: int | None) -> tuple[int, int]:
    if n_users is not None and n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users}.")
    if n_movies is not None and n_movies < 1:
        raise ValueError(f"n_movies must be positive, got {n_movies}.")
    users = n_users if n_users is not None else max(1, round(n_ratings / 100))
    if n_movies is None:
        # Room for the most active users: twice the mean ratings per user at least.
        n_movies = max(20, math.ceil(1700 * (n_ratings / 100_000) ** 0.6), math.ceil(2 * n_ratings / users))
    if n_users is None:
        users = max(users, math.ceil(2 * n_ratings / n_movies))
    if n_ratings > users * n_movies:
        raise ValueError(f"{n_ratings} ratings do not fit in {users} users x {n_movies} movies.")
    return users, n_movies


class _Popularity:
    """Zipf popularity over the catalogue, in a random order so that the movie id says nothing.

    Ranks follow the continuous power law x**-a on [1, n+1), floored, which can be drawn by
    inverting its CDF: much faster than a search in a cumulative table for millions of draws.
    """

    def __init__(self, n_movies: int, rng: np.random.Generator) -> None:
        self.n_movies = n_movies
        self._power = 1.0 - _ZIPF_EXPONENT
        self._top = (n_movies + 1.0) ** self._power - 1.0
        bounds = np.arange(1, n_movies + 2, dtype=np.float64) ** self._power
        by_rank = np.diff(bounds) / self._top
        self.item_by_rank = rng.permutation(n_movies).astype(np.int64)
        self.weights = np.empty(n_movies)
        self.weights[self.item_by_rank] = by_rank

    def draw(self, size: int, rng: np.random.Generator, *, uniform_share: float = 0.0) -> NDArray[np.int64]:
        """Item indices drawn with replacement; `uniform_share` of them uniformly instead."""
        x = (1.0 + rng.random(size) * self._top) ** (1.0 / self._power)
        items = self.item_by_rank[np.minimum(x.astype(np.int64) - 1, self.n_movies - 1)]
        if uniform_share > 0:
            uniform = rng.random(size) < uniform_share
            items[uniform] = rng.integers(self.n_movies, size=int(uniform.sum()))
        return items


def _user_counts(n_ratings: int, n_users: int, n_movies: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Ratings per user: a floor plus a lognormal share of the rest, capped by the catalogue."""
    floor = min(_MIN_USER_RATINGS, n_ratings // n_users, n_movies)
    weights = rng.lognormal(0.0, _USER_ACTIVITY_SIGMA, n_users)
    counts = np.full(n_users, float(floor))
    remaining = float(n_ratings - floor * n_users)
    for _ in range(50):  # hand the excess of capped users to the others; a few passes suffice
        open_ = counts < n_movies
        if remaining <= 0 or not open_.any():
            break
        counts[open_] += remaining * weights[open_] / weights[open_].sum()
        remaining = float(np.clip(counts - n_movies, 0, None).sum())
        counts = np.minimum(counts, n_movies)
    whole = np.floor(counts).astype(np.int64)
    # Largest remainders get the last ratings, so that the total is exact.
    short = n_ratings - int(whole.sum())
    if short > 0:
        room = whole < n_movies
        candidates = np.flatnonzero(room)[np.argsort(-(counts - whole)[room], kind="stable")]
        whole[candidates[:short]] += 1
    return whole


def _sample_pairs(
    counts: NDArray[np.int64], popularity: _Popularity, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Distinct items per user, drawn by popularity; (user index, item index) sorted by both."""
    n_movies = popularity.n_movies
    dense = counts > _DENSE_SHARE * n_movies
    users = np.repeat(np.flatnonzero(~dense), counts[~dense])
    keys = np.sort(users * n_movies + popularity.draw(len(users), rng))
    collided = np.zeros(len(keys), dtype=bool)
    collided[1:] = keys[1:] == keys[:-1]
    accepted = keys[~collided]
    pending = keys[collided] // n_movies
    extra = np.empty(0, dtype=np.int64)
    for round_ in range(_MAX_ROUNDS):
        if len(pending) == 0:
            break
        # Redraw colliding slots; after a few rounds mix in a uniform draw so heavy users finish.
        mix = min(1.0, max(0, round_ + 1 - _POPULARITY_ROUNDS) / 5)
        candidates = pending * n_movies + popularity.draw(len(pending), rng, uniform_share=mix)
        order = np.argsort(candidates, kind="stable")
        candidates, pending = candidates[order], pending[order]
        repeat = np.zeros(len(candidates), dtype=bool)
        repeat[1:] = candidates[1:] == candidates[:-1]
        ok = ~repeat & ~_contains(accepted, candidates) & ~_contains(extra, candidates)
        extra = np.sort(np.concatenate([extra, candidates[ok]]))
        pending = pending[~ok]
    keys = np.concatenate([accepted, extra, _dense_items(np.flatnonzero(dense), counts, popularity, rng)])
    keys.sort(kind="stable")  # merge sort: fast on the nearly sorted parts
    return keys // n_movies, keys % n_movies


def _contains(sorted_keys: NDArray[np.int64], keys: NDArray[np.int64]) -> NDArray[np.bool_]:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.asarray(sorted_keys[at] == keys)


def _dense_items(
    users: NDArray[np.int64],
    counts: NDArray[np.int64],
    popularity: _Popularity,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Keys for users who rate a large share of the catalogue: weighted sampling without
    replacement (Efraimidis-Spirakis: the top `count` items by log weight plus Gumbel noise)."""
    n_movies = popularity.n_movies
    batch = max(1, _DENSE_BATCH_CELLS // n_movies)
    log_weights = np.log(popularity.weights)
    parts = [np.empty(0, dtype=np.int64)]
    for start in range(0, len(users), batch):
        block = users[start : start + batch]
        scores = log_weights + rng.gumbel(size=(len(block), n_movies))
        ranked = np.argsort(-scores, axis=1)
        keep = np.arange(n_movies) < counts[block][:, None]
        parts.append(np.repeat(block, counts[block]) * n_movies + ranked[keep])
    return np.concatenate(parts)


def _stars(
    user_index: NDArray[np.int64],
    item_index: NDArray[np.int64],
    user_factors: NDArray[np.float32],
    item_factors: NDArray[np.float32],
    user_bias: NDArray[np.float32],
    item_bias: NDArray[np.float32],
    rng: np.random.Generator,
) -> NDArray[np.float32]:
    """Latent-factor scores plus noise, cut at the quantiles that give ML-100K's star shares."""
    scores = np.empty(len(user_index), dtype=np.float32)
    step = 1_000_000  # rows per block: two 8-factor float32 blocks of 32 MB
    for start in range(0, len(user_index), step):
        users, items = user_index[start : start + step], item_index[start : start + step]
        affinity = np.einsum("ij,ij->i", user_factors[users], item_factors[items])
        scores[start : start + step] = user_bias[users] + item_bias[items] + 1.5 * affinity
    scores += rng.normal(0.0, 0.6, len(scores)).astype(np.float32)
    cuts = np.quantile(scores, np.cumsum(_STAR_SHARE)[:-1])
    return (np.searchsorted(cuts, scores) + 1).astype(np.float32)


def _timestamps(user_index: NDArray[np.int64], n_users: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Each user rates during a window (median about a month) inside two years."""
    length = np.minimum(rng.lognormal(math.log(30 * 86_400), 1.5, n_users), _SPAN)
    start = _START + rng.random(n_users) * (_SPAN - length)
    offsets = rng.random(len(user_index)) * length[user_index]
    return (start[user_index] + offsets).astype(np.int64)


def _genres(
    item_factors: NDArray[np.float32], rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """1-3 genres per movie, picked by how well each genre's direction matches the item factors."""
    n_movies = len(item_factors)
    directions = rng.normal(0.0, 1.0, (_N_FACTORS, len(GENRES))).astype(np.float32)
    scores = 1.5 * item_factors @ directions + np.log(_GENRE_SHARE) + rng.gumbel(size=(n_movies, len(GENRES)))
    ranked = np.argsort(-scores, axis=1)
    how_many = rng.choice([1, 2, 3], size=n_movies, p=[0.5, 0.35, 0.15])
    keep = np.arange(len(GENRES)) < how_many[:, None]
    movies = np.repeat(np.arange(n_movies), how_many)
    return movies, ranked[keep].astype(np.int64)


def _movies(movie_ids: NDArray[np.int64], rng: np.random.Generator) -> pd.DataFrame:
    n = len(movie_ids)
    adjective = _TITLE_ADJECTIVES[rng.integers(len(_TITLE_ADJECTIVES), size=n)]
    noun = _TITLE_NOUNS[rng.integers(len(_TITLE_NOUNS), size=n)]
    place = _TITLE_PLACES[rng.integers(len(_TITLE_PLACES), size=n)]
    shape = rng.choice(4, size=n, p=[0.35, 0.3, 0.2, 0.15])
    title = pd.Series(np.char.add(np.char.add(adjective, " "), noun), dtype="str")
    title = title.where(shape != 1, "The " + title)
    title = title.where(shape != 2, pd.Series(noun, dtype="str") + " of " + pd.Series(place, dtype="str"))
    title = title.where(
        shape != 3, title + " " + pd.Series(rng.integers(2, 5, size=n).astype(str), dtype="str")
    )
    # Release years lean recent, as in MovieLens: 2016 minus an exponential age, not before 1920.
    year = np.maximum(2016 - rng.exponential(14.0, n).astype(np.int64), 1920)
    return pd.DataFrame(
        {
            "movie_id": movie_ids,
            "title": title,
            "year": pd.Series(year, dtype="Int64"),
            "imdb_id": pd.Series(pd.NA, index=range(n), dtype="Int64"),
            "tmdb_id": pd.Series(pd.NA, index=range(n), dtype="Int64"),
            "freebase_id": pd.Series(np.nan, index=range(n), dtype="str"),
        }
    ).sort_values("movie_id", ignore_index=True)


def _people_and_credits(
    movie_ids: NDArray[np.int64],
    genre_index: tuple[NDArray[np.int64], NDArray[np.int64]],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each genre has its own pool of people; a movie hires from the pool of its first genre."""
    n_movies = len(movie_ids)
    first = np.unique(genre_index[0], return_index=True)[1]
    main_genre = genre_index[1][first]
    pool_size = max(5, n_movies // 10)  # people per genre: each works on about 5 movies
    roles = ["director", "writer", *(["actor"] * _ACTORS_PER_MOVIE)]
    # Zipf-like reuse inside a pool: a few prolific people, many with one credit.
    draws = np.minimum(
        (rng.pareto(1.2, (n_movies, len(roles))) * pool_size / 8).astype(np.int64), pool_size - 1
    )
    person = main_genre[:, None] * pool_size + draws
    credits = pd.DataFrame(
        {
            "movie_id": np.repeat(movie_ids, len(roles)),
            "person": person.ravel(),
            "role": pd.Series(np.tile(roles, n_movies), dtype="str"),
        }
    ).drop_duplicates(["movie_id", "person", "role"])
    used = np.unique(credits["person"].to_numpy())
    first_name = _FIRST_NAMES[rng.integers(len(_FIRST_NAMES), size=len(used))]
    last_name = _LAST_NAMES[rng.integers(len(_LAST_NAMES), size=len(used))]
    person_ids = pd.Series(used.astype(str), dtype="str").radd("synth.")
    people = pd.DataFrame(
        {
            "person_id": person_ids,
            "name": pd.Series(np.char.add(np.char.add(first_name, " "), last_name), dtype="str"),
        }
    )
    credits = pd.DataFrame(
        {
            "movie_id": credits["movie_id"].to_numpy(dtype=np.int64),
            "person_id": pd.Series(credits["person"].to_numpy().astype(str), dtype="str").radd("synth."),
            "role": pd.Series(credits["role"].to_numpy(), dtype="str"),
        }
    ).sort_values(["movie_id", "role", "person_id"], ignore_index=True)
    return people, credits


def _users(n_users: int, rng: np.random.Generator) -> pd.DataFrame:
    """Demographics with ML-100K's shares: 71% men, ages 7-73 (median about 31), its occupations."""
    age = np.clip(np.round(rng.gamma(7.0, 34.0 / 7.0, n_users)), 7, 73).astype(np.int64)
    gender = np.where(rng.random(n_users) < 0.71, "M", "F")
    occupation = np.asarray(_OCCUPATIONS)[
        rng.choice(len(_OCCUPATIONS), size=n_users, p=_OCCUPATION_COUNTS / _OCCUPATION_COUNTS.sum())
    ]
    zip_code = np.char.zfill(rng.integers(1000, 99999, size=n_users).astype(str), 5)
    return pd.DataFrame(
        {
            "user_id": np.arange(1, n_users + 1, dtype=np.int64),
            "age": pd.Series(age, dtype="Int64"),
            "gender": pd.Series(gender, dtype="str"),
            "occupation": pd.Series(occupation, dtype="str"),
            "zip_code": pd.Series(zip_code, dtype="str"),
        }
    )
