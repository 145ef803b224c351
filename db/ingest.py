"""Bulk-load a `Dataset` into PostgreSQL: COPY into staging tables, then set-based upserts.

The whole load is one transaction: it lands completely or not at all. Loading the same data twice
leaves the database as after the first load (movies and users are upserted by id, genres and
credits of the loaded movies are replaced, ratings are upserted keeping the latest).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pandas as pd
import psycopg
from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import AddConstraint, CreateIndex

from db.models import Rating
from ml.datasets.base import Dataset

logger = logging.getLogger(__name__)

Cursor = psycopg.Cursor[tuple[object, ...]]

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total) while loading."""

COPY_CHUNK_ROWS = 250_000  # ~10 MB of CSV per write; keeps memory flat for 25M-row files

STAGING_TABLES = {
    "stage_user": "id bigint, age smallint, gender text, occupation text, zip_code text",
    "stage_movie": "id bigint, title text, year smallint, imdb_id int, tmdb_id int, freebase_id text",
    "stage_genre": "movie_id bigint, genre text",
    "stage_person": "freebase_id text, name text",
    "stage_credit": "movie_id bigint, freebase_id text, role text",
    "stage_rating": "user_id bigint, movie_id bigint, rating real, ts bigint",
    "stage_tag": "user_id bigint, movie_id bigint, tag text, ts bigint",
}


class LoadRejected(Exception):
    """The database refused the data (a constraint or type check); nothing was written."""


# A re-load of unchanged data must not rewrite every row (it did, at ~25k rows/s).
UPSERT_RATINGS = """
INSERT INTO rating (user_id, movie_id, rating, rated_at)
SELECT user_id, movie_id, rating, to_timestamp(ts) FROM stage_rating
ON CONFLICT (user_id, movie_id) DO UPDATE
    SET rating = EXCLUDED.rating, rated_at = EXCLUDED.rated_at
    WHERE EXCLUDED.rated_at > rating.rated_at
       OR (EXCLUDED.rated_at = rating.rated_at AND EXCLUDED.rating <> rating.rating)
"""

# Into an empty table: no conflicts are possible, and building the keys once at the end is ~7x
# faster than checking two foreign keys and updating three indexes for every row.
BULK_INSERT_RATINGS = """
INSERT INTO rating (user_id, movie_id, rating, rated_at)
SELECT user_id, movie_id, rating, to_timestamp(ts) FROM stage_rating
"""


def _rating_keys() -> tuple[list[str], list[str]]:
    """DDL that drops and re-creates the primary key, foreign keys and indexes of `rating`."""
    table = Rating.__table__
    assert isinstance(table, Table)
    dialect = postgresql.dialect()
    constraints = [table.primary_key, *sorted(table.foreign_key_constraints, key=lambda c: str(c.name))]
    indexes = sorted(table.indexes, key=lambda index: str(index.name))
    drop = [f'ALTER TABLE rating DROP CONSTRAINT "{c.name}"' for c in reversed(constraints)]
    drop += [f'DROP INDEX "{index.name}"' for index in indexes]
    create = [str(AddConstraint(c).compile(dialect=dialect)) for c in constraints]
    create += [str(CreateIndex(index).compile(dialect=dialect)) for index in indexes]
    return drop, create


def _merge_ratings(cursor: Cursor) -> None:
    """Upsert the staged ratings; into an empty `rating` table, bulk-insert and build keys after."""
    cursor.execute("LOCK TABLE rating IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute("SELECT EXISTS (SELECT 1 FROM rating)")
    row = cursor.fetchone()
    if row is not None and row[0]:
        cursor.execute(UPSERT_RATINGS)
        return
    drop, create = _rating_keys()
    for statement in drop:  # takes ACCESS EXCLUSIVE until commit: fine, the table is empty
        cursor.execute(statement)
    cursor.execute(BULK_INSERT_RATINGS)
    for statement in create:  # a duplicate or an unknown user/movie fails here and rolls back all
        cursor.execute(statement)


# Each statement is set-based; together they make the load idempotent.
UPSERTS: tuple[tuple[str, str | Callable[[Cursor], None]], ...] = (
    (
        "users",
        """
        INSERT INTO app_user (id, age, gender, occupation, zip_code)
        SELECT id, age, gender, occupation, zip_code FROM stage_user
        ON CONFLICT (id) DO UPDATE SET
            age = EXCLUDED.age, gender = EXCLUDED.gender,
            occupation = EXCLUDED.occupation, zip_code = EXCLUDED.zip_code
        """,
    ),
    (
        "users",
        """
        INSERT INTO app_user (id)
        SELECT DISTINCT user_id FROM stage_rating
        UNION SELECT DISTINCT user_id FROM stage_tag
        ON CONFLICT (id) DO NOTHING
        """,
    ),
    (
        "movies",
        """
        INSERT INTO movie (id, title, year, imdb_id, tmdb_id, freebase_id)
        SELECT id, title, year, imdb_id, tmdb_id, freebase_id FROM stage_movie
        ON CONFLICT (id) DO UPDATE SET
            title = EXCLUDED.title, year = EXCLUDED.year, imdb_id = EXCLUDED.imdb_id,
            tmdb_id = EXCLUDED.tmdb_id, freebase_id = EXCLUDED.freebase_id
        """,
    ),
    (
        "genres",
        "INSERT INTO genre (name) SELECT DISTINCT genre FROM stage_genre ON CONFLICT (name) DO NOTHING",
    ),
    ("genres", "DELETE FROM movie_genre WHERE movie_id IN (SELECT id FROM stage_movie)"),
    (
        "genres",
        """
        INSERT INTO movie_genre (movie_id, genre_id)
        SELECT DISTINCT s.movie_id, g.id FROM stage_genre s JOIN genre g ON g.name = s.genre
        """,
    ),
    (
        "people",
        """
        INSERT INTO person (freebase_id, name)
        SELECT freebase_id, name FROM stage_person
        ON CONFLICT (freebase_id) DO UPDATE SET name = COALESCE(EXCLUDED.name, person.name)
        """,
    ),
    ("credits", "DELETE FROM credit WHERE movie_id IN (SELECT id FROM stage_movie)"),
    (
        "credits",
        """
        INSERT INTO credit (movie_id, person_id, role)
        SELECT DISTINCT s.movie_id, p.id, s.role
        FROM stage_credit s JOIN person p ON p.freebase_id = s.freebase_id
        """,
    ),
    ("ratings", _merge_ratings),
    (
        "tags",
        """
        INSERT INTO movie_tag (user_id, movie_id, tag, tagged_at)
        SELECT DISTINCT ON (user_id, movie_id, tag) user_id, movie_id, tag, to_timestamp(ts)
        FROM stage_tag ORDER BY user_id, movie_id, tag, ts DESC
        ON CONFLICT (user_id, movie_id, tag) DO NOTHING
        """,
    ),
    (
        "sequences",
        """
        SELECT setval(pg_get_serial_sequence('app_user', 'id'), GREATEST((SELECT max(id) FROM app_user), 1)),
               setval(pg_get_serial_sequence('movie', 'id'), GREATEST((SELECT max(id) FROM movie), 1))
        """,
    ),
)


@dataclass
class LoadReport:
    """What a load wrote, and how long it took."""

    dataset: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ratings_per_second(self) -> float:
        """Throughput over the whole load, counted in ratings."""
        return self.rows.get("ratings", 0) / self.seconds if self.seconds else 0.0


def _stage_frames(dataset: Dataset) -> dict[str, pd.DataFrame]:
    movies = dataset.movies.rename(columns={"movie_id": "id"})
    return {
        "stage_user": dataset.users.rename(columns={"user_id": "id"})[
            ["id", "age", "gender", "occupation", "zip_code"]
        ],
        "stage_movie": movies[["id", "title", "year", "imdb_id", "tmdb_id", "freebase_id"]],
        "stage_genre": dataset.genres[["movie_id", "genre"]],
        "stage_person": dataset.people.rename(columns={"person_id": "freebase_id"})[["freebase_id", "name"]],
        "stage_credit": dataset.credits.rename(columns={"person_id": "freebase_id"})[
            ["movie_id", "freebase_id", "role"]
        ],
        "stage_rating": dataset.ratings.rename(columns={"timestamp": "ts"})[
            ["user_id", "movie_id", "rating", "ts"]
        ],
        "stage_tag": dataset.tags.rename(columns={"timestamp": "ts"})[["user_id", "movie_id", "tag", "ts"]],
    }


def _csv_chunks(frame: pd.DataFrame) -> Iterable[tuple[int, str]]:
    for start in range(0, len(frame), COPY_CHUNK_ROWS):
        chunk = frame.iloc[start : start + COPY_CHUNK_ROWS]
        buffer = io.StringIO()
        chunk.to_csv(buffer, index=False, header=False, na_rep="")
        yield len(chunk), buffer.getvalue()


def copy_frame(
    cursor: psycopg.Cursor[tuple[object, ...]],
    table: str,
    frame: pd.DataFrame,
    on_rows: Callable[[int], None],
) -> None:
    """COPY `frame` into `table` (columns in frame order) as CSV, in chunks."""
    columns = ", ".join(frame.columns)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        for rows, text in _csv_chunks(frame):
            copy.write(text)
            on_rows(rows)


def load_dataset(engine: Engine, dataset: Dataset, *, progress: Progress | None = None) -> LoadReport:
    """Write `dataset` to the database in one transaction.

    Args:
        engine: engine of the migrated movierec database.
        dataset: the data to load (see `ml.datasets.base.Dataset` for the columns).
        progress: optional callback `(stage, done, total)` for a progress bar.

    Returns:
        Row counts per table in the dataset and the elapsed time.

    Raises:
        LoadRejected: the database refused the data (say, a rating of an unknown movie); nothing was written.
    """
    started = time.perf_counter()
    report = LoadReport(dataset=dataset.name, rows=dataset.summary())
    frames = _stage_frames(dataset)
    total_rows = sum(len(frame) for frame in frames.values())
    copied = 0

    def advance(rows: int) -> None:
        nonlocal copied
        copied += rows
        if progress:
            progress("copy", copied, total_rows)

    try:
        _copy_and_merge(engine, frames, advance, progress)
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
        detail = exc.diag.message_detail or ""
        raise LoadRejected(f"{exc.diag.message_primary}. {detail}".strip()) from exc
    report.seconds = time.perf_counter() - started
    logger.info(
        "loaded %s: %s in %.1fs (%.0f ratings/s)",
        dataset.name,
        report.rows,
        report.seconds,
        report.ratings_per_second,
    )
    return report


def _copy_and_merge(
    engine: Engine,
    frames: dict[str, pd.DataFrame],
    advance: Callable[[int], None],
    progress: Progress | None,
) -> None:
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with raw.cursor() as cursor:
            for table, columns in STAGING_TABLES.items():
                cursor.execute(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP")
            for table, frame in frames.items():
                copy_frame(cursor, table, frame, advance)
            for table in STAGING_TABLES:  # temp tables have no statistics until analysed
                cursor.execute(f"ANALYZE {table}")
            for step, (stage, statement) in enumerate(UPSERTS, start=1):
                if progress:
                    progress(stage, step, len(UPSERTS))
                if callable(statement):
                    statement(cursor)
                else:
                    cursor.execute(statement)
