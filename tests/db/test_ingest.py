from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError

from db.extract import ratings_digest, read_dataset
from db.ingest import LoadRejected, load_dataset
from db.migrate import schema_drift, upgrade
from db.models import AppUser, Credit, Genre, Movie, MovieGenre, Person, Rating
from db.session import create_db_engine
from ml.datasets import Dataset, load_builtin

ML1M_SAMPLE = Path(__file__).parents[1] / "ml" / "datasets" / "data" / "ml1m-movies-sample.dat"


def tiny_dataset(**overrides: pd.DataFrame) -> Dataset:
    """Three movies, two users, four ratings; enough to see every table filled."""
    frames = {
        "ratings": pd.DataFrame(
            {
                "user_id": pd.array([1, 1, 2, 2], dtype="int64"),
                "movie_id": pd.array([10, 11, 10, 12], dtype="int64"),
                "rating": pd.array([4.0, 3.5, 5.0, 1.0], dtype="float32"),
                "timestamp": pd.array([1_000, 2_000, 3_000, 4_000], dtype="int64"),
            }
        ),
        "movies": pd.DataFrame(
            {
                "movie_id": pd.array([10, 11, 12], dtype="int64"),
                "title": ["Heat", "Alien", "Amélie; DROP TABLE movie; --"],
                "year": pd.array([1995, 1979, None], dtype="Int64"),
                "imdb_id": pd.array([113277, None, None], dtype="Int64"),
                "tmdb_id": pd.array([949, None, None], dtype="Int64"),
                "freebase_id": ["m.0heat", None, "m.0amelie"],
            }
        ),
        "users": pd.DataFrame(
            {
                "user_id": pd.array([1, 2], dtype="int64"),
                "age": pd.array([30, None], dtype="Int64"),
                "gender": ["F", None],
                "occupation": ["writer", None],
                "zip_code": ["02139", None],
            }
        ),
        "genres": pd.DataFrame(
            {"movie_id": pd.array([10, 10, 11], dtype="int64"), "genre": ["Crime", "Thriller", "Sci-Fi"]}
        ),
        "people": pd.DataFrame({"person_id": ["m.0mann", "m.0pacino"], "name": [None, "Al Pacino"]}),
        "credits": pd.DataFrame(
            {
                "movie_id": pd.array([10, 10], dtype="int64"),
                "person_id": ["m.0mann", "m.0pacino"],
                "role": ["director", "actor"],
            }
        ),
    }
    frames.update(overrides)
    return Dataset(name="tiny", **frames)


@pytest.fixture
def fresh_engine(scratch_database_url: str) -> Iterator[Engine]:
    upgrade(scratch_database_url)
    engine = create_db_engine(scratch_database_url, "test")
    yield engine
    engine.dispose()


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: connection.scalar(select(func.count()).select_from(model)) or 0
            for model in (AppUser, Movie, Genre, MovieGenre, Person, Credit, Rating)
        }


class TestLoadDataset:
    def test_loads_every_table(self, fresh_engine: Engine) -> None:
        # when
        report = load_dataset(fresh_engine, tiny_dataset())
        # then
        assert report.rows["ratings"] == 4
        assert _counts(fresh_engine) == {
            "app_user": 2,
            "movie": 3,
            "genre": 3,
            "movie_genre": 3,
            "person": 2,
            "credit": 2,
            "rating": 4,
        }
        with fresh_engine.connect() as connection:
            assert (
                connection.scalar(select(Movie.title).where(Movie.id == 12)) == "Amélie; DROP TABLE movie; --"
            )
            assert (
                connection.scalar(select(Rating.rating).where(Rating.user_id == 1, Rating.movie_id == 11))
                == 3.5
            )

    def test_loading_twice_leaves_the_same_data(self, fresh_engine: Engine) -> None:
        load_dataset(fresh_engine, tiny_dataset())
        first = read_dataset(fresh_engine)
        # when
        load_dataset(fresh_engine, tiny_dataset())
        # then
        second = read_dataset(fresh_engine)
        assert _counts(fresh_engine)["rating"] == 4
        assert ratings_digest(first.ratings) == ratings_digest(second.ratings)
        pd.testing.assert_frame_equal(first.credits, second.credits)

    def test_new_users_get_ids_after_the_loaded_ones(self, fresh_engine: Engine) -> None:
        load_dataset(fresh_engine, tiny_dataset())
        with fresh_engine.begin() as connection:
            new_id = connection.scalar(text("INSERT INTO app_user DEFAULT VALUES RETURNING id"))
        assert new_id == 3

    def test_a_newer_rating_replaces_the_older_one(self, fresh_engine: Engine) -> None:
        load_dataset(fresh_engine, tiny_dataset())
        ratings = tiny_dataset().ratings.copy()
        ratings.loc[0, ["rating", "timestamp"]] = [2.0, 9_000]
        # when
        load_dataset(fresh_engine, tiny_dataset(ratings=ratings))
        # then
        with fresh_engine.connect() as connection:
            assert (
                connection.scalar(select(Rating.rating).where(Rating.user_id == 1, Rating.movie_id == 10))
                == 2.0
            )

    def test_bad_rows_roll_back_the_whole_load(self, fresh_engine: Engine) -> None:
        load_dataset(fresh_engine, tiny_dataset())
        before = read_dataset(fresh_engine)
        ratings = pd.concat(
            [
                tiny_dataset().ratings.assign(
                    rating=pd.array([1.0, 1.0, 1.0, 1.0], dtype="float32"), timestamp=9_999
                ),
                pd.DataFrame({"user_id": [1], "movie_id": [999], "rating": [4.0], "timestamp": [5]}).astype(
                    tiny_dataset().ratings.dtypes.to_dict()
                ),
            ],
            ignore_index=True,
        )
        # when: movie 999 does not exist
        with pytest.raises(LoadRejected, match=r"movie_id\)=\(999\)"):
            load_dataset(fresh_engine, tiny_dataset(ratings=ratings))
        # then: not even the valid rows changed
        after = read_dataset(fresh_engine)
        assert ratings_digest(before.ratings) == ratings_digest(after.ratings)

    def test_bad_rows_into_an_empty_database_leave_it_empty_with_its_keys(self, fresh_engine: Engine) -> None:
        ratings = pd.concat(
            [
                tiny_dataset().ratings,
                pd.DataFrame({"user_id": [1], "movie_id": [999], "rating": [4.0], "timestamp": [5]}).astype(
                    tiny_dataset().ratings.dtypes.to_dict()
                ),
            ],
            ignore_index=True,
        )
        # when: the first load goes through the bulk path, and movie 999 does not exist
        with pytest.raises(LoadRejected, match=r"movie_id\)=\(999\)"):
            load_dataset(fresh_engine, tiny_dataset(ratings=ratings))
        # then
        assert _counts(fresh_engine)["rating"] == 0
        with fresh_engine.connect() as connection:
            assert schema_drift(connection) == []  # keys and indexes of `rating` are back

    def test_the_bulk_path_rebuilds_the_keys_that_protect_later_writes(self, fresh_engine: Engine) -> None:
        load_dataset(fresh_engine, tiny_dataset())
        with fresh_engine.connect() as connection:
            assert schema_drift(connection) == []
        with pytest.raises(IntegrityError), fresh_engine.begin() as connection:
            connection.execute(text("INSERT INTO rating (user_id, movie_id, rating) VALUES (1, 999, 3)"))


@pytest.mark.slow
class TestMovieLens100K:
    def test_loads_the_real_dataset_and_reads_it_back(self, fresh_engine: Engine) -> None:
        dataset = load_builtin("ml-100k", ml1m_movies=ML1M_SAMPLE)
        # when
        load_dataset(fresh_engine, dataset)
        # then
        counts = _counts(fresh_engine)
        assert counts["rating"] == 100_000
        assert counts["app_user"] == 943
        assert counts["movie"] == 1_682
        assert counts["genre"] == 19
        assert counts["credit"] == len(dataset.credits.drop_duplicates())
        back = read_dataset(fresh_engine)
        assert ratings_digest(back.ratings) == ratings_digest(
            dataset.ratings.sort_values(["user_id", "movie_id"], ignore_index=True)
        )
        with fresh_engine.connect() as connection:
            directors = connection.scalar(
                select(func.count()).select_from(Credit).where(Credit.role == "director")
            )
        assert directors and directors >= 10
