"""The in-memory shape of a movie dataset, shared by readers, the database loader and the models.

Every reader returns a `Dataset`; the loader writes one to PostgreSQL and the worker reads one back,
so models never care where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

RATINGS_COLUMNS = ("user_id", "movie_id", "rating", "timestamp")
MOVIES_COLUMNS = ("movie_id", "title", "year", "imdb_id", "tmdb_id", "freebase_id")
USERS_COLUMNS = ("user_id", "age", "gender", "occupation", "zip_code")
GENRES_COLUMNS = ("movie_id", "genre")
PEOPLE_COLUMNS = ("person_id", "name")
CREDITS_COLUMNS = ("movie_id", "person_id", "role")
TAGS_COLUMNS = ("user_id", "movie_id", "tag", "timestamp")


class DataFormatError(ValueError):
    """A source file is malformed; says which file, which line (1-based) and why."""

    def __init__(self, file: str, line: int | None, reason: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})


@dataclass
class Dataset:
    """A movie dataset as data frames, one per table.

    Column types (readers must produce exactly these):
        ratings: user_id int64, movie_id int64, rating float32 (0.5-5 scale), timestamp int64 (unix s)
        movies:  movie_id int64, title str, year Int64 (nullable), imdb_id Int64, tmdb_id Int64,
                 freebase_id str|None
        users:   user_id int64, age Int64, gender str|None, occupation str|None, zip_code str|None
        genres:  movie_id int64, genre str                    (one row per movie and genre)
        people:  person_id str (Freebase id such as "m.0bln8"), name str|None
        credits: movie_id int64, person_id str, role str      (actor, director, writer, producer, ...)
        tags:    user_id int64, movie_id int64, tag str, timestamp int64
    """

    name: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    users: pd.DataFrame = field(default_factory=lambda: _empty(USERS_COLUMNS))
    genres: pd.DataFrame = field(default_factory=lambda: _empty(GENRES_COLUMNS))
    people: pd.DataFrame = field(default_factory=lambda: _empty(PEOPLE_COLUMNS))
    credits: pd.DataFrame = field(default_factory=lambda: _empty(CREDITS_COLUMNS))
    tags: pd.DataFrame = field(default_factory=lambda: _empty(TAGS_COLUMNS))

    def summary(self) -> dict[str, int]:
        """Row counts per table."""
        return {
            "ratings": len(self.ratings),
            "movies": len(self.movies),
            "users": len(self.users),
            "genres": len(self.genres),
            "people": len(self.people),
            "credits": len(self.credits),
            "tags": len(self.tags),
        }
