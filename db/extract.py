"""Read the database back into a `Dataset` in bulk (COPY TO STDOUT), for training and analysis."""

from __future__ import annotations

import hashlib
import io
import logging
import time

import pandas as pd
import psycopg
from sqlalchemy import Engine

from ml.datasets.base import Dataset

logger = logging.getLogger(__name__)

QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "ratings": (
        "SELECT user_id, movie_id, rating, extract(epoch FROM rated_at)::bigint AS timestamp "
        "FROM rating ORDER BY user_id, movie_id",
        {"user_id": "int64", "movie_id": "int64", "rating": "float32", "timestamp": "int64"},
    ),
    "movies": (
        "SELECT id AS movie_id, title, year, imdb_id, tmdb_id, freebase_id FROM movie ORDER BY id",
        {
            "movie_id": "int64",
            "title": "string",
            "year": "Int64",
            "imdb_id": "Int64",
            "tmdb_id": "Int64",
            "freebase_id": "string",
        },
    ),
    "users": (
        "SELECT id AS user_id, age, gender, occupation, zip_code FROM app_user ORDER BY id",
        {
            "user_id": "int64",
            "age": "Int64",
            "gender": "string",
            "occupation": "string",
            "zip_code": "string",
        },
    ),
    "genres": (
        "SELECT mg.movie_id, g.name AS genre FROM movie_genre mg JOIN genre g ON g.id = mg.genre_id "
        "ORDER BY mg.movie_id, g.name",
        {"movie_id": "int64", "genre": "string"},
    ),
    "people": (
        "SELECT freebase_id AS person_id, name FROM person WHERE freebase_id IS NOT NULL ORDER BY freebase_id",
        {"person_id": "string", "name": "string"},
    ),
    "credits": (
        "SELECT c.movie_id, p.freebase_id AS person_id, c.role FROM credit c JOIN person p ON p.id = c.person_id "
        "WHERE p.freebase_id IS NOT NULL ORDER BY c.movie_id, p.freebase_id, c.role",
        {"movie_id": "int64", "person_id": "string", "role": "string"},
    ),
}


def _copy_out(cursor: psycopg.Cursor[tuple[object, ...]], query: str, dtypes: dict[str, str]) -> pd.DataFrame:
    buffer = io.BytesIO()
    with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)") as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    frame = pd.read_csv(buffer, dtype=dtypes, keep_default_na=False, na_values=[""])
    return frame


def read_dataset(engine: Engine, name: str = "database") -> Dataset:
    """Everything the models train on, read in one repeatable-read snapshot.

    Args:
        engine: engine of the movierec database.
        name: the name the returned dataset carries.

    Returns:
        A `Dataset` whose frames follow the dtypes of `ml.datasets.base`.
    """
    started = time.perf_counter()
    frames: dict[str, pd.DataFrame] = {}
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            raw = connection.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            with raw.cursor() as cursor:
                for table, (query, dtypes) in QUERIES.items():
                    frames[table] = _copy_out(cursor, query, dtypes)
    dataset = Dataset(name=name, **frames)
    logger.info("read %s from the database in %.2fs", dataset.summary(), time.perf_counter() - started)
    return dataset


def ratings_digest(ratings: pd.DataFrame) -> str:
    """A short content hash of a ratings frame, logged with every training run."""
    hashed = pd.util.hash_pandas_object(ratings[["user_id", "movie_id", "rating", "timestamp"]], index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]
