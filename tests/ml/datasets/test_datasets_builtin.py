from __future__ import annotations

import importlib.metadata
import re

import pytest

from ml.datasets import Dataset, load_builtin
from ml.datasets.grouplens import ML100K_GENRES


@pytest.fixture(scope="module")
def ml100k() -> Dataset:
    return load_builtin("ml-100k")


class TestLoadBuiltin:
    def test_counts(self, ml100k: Dataset) -> None:
        assert len(ml100k.ratings) == 100_000
        assert len(ml100k.users) == 943
        assert len(ml100k.movies) == 1682
        assert ml100k.ratings["user_id"].nunique() == 943
        assert ml100k.ratings["movie_id"].nunique() == 1682
        assert not ml100k.ratings.duplicated(["user_id", "movie_id"]).any()

    def test_follows_contract(self, ml100k: Dataset, check_contract) -> None:
        check_contract(ml100k)

    def test_ratings_are_whole_stars_of_1997_98(self, ml100k: Dataset) -> None:
        assert set(ml100k.ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
        assert ml100k.ratings["rating"].mean() == pytest.approx(3.53, abs=0.01)
        assert ml100k.ratings["timestamp"].between(874_724_710, 893_286_638).all()

    def test_users_have_demographics(self, ml100k: Dataset) -> None:
        users = ml100k.users.set_index("user_id")
        assert list(users.loc[1]) == [24, "M", "technician", "85711"]
        assert users.notna().all().all()

    def test_movies_have_titles_years_and_freebase_ids(self, ml100k: Dataset) -> None:
        movies = ml100k.movies.set_index("movie_id")
        assert movies.loc[1, "title"] == "Toy Story"
        assert movies.loc[1, "year"] == 1995
        # Titles keep their inner parentheses; the one suffixed title gets its year back.
        assert movies.loc[11, "title"] == "Seven (Se7en)"
        assert movies.loc[1412, "year"] == 1995
        assert movies.loc[267, "title"] == "unknown"
        assert movies["year"].isna().sum() == 1
        assert movies["freebase_id"].notna().sum() == 1598
        assert movies["imdb_id"].isna().all()

    def test_genres_are_the_19_of_u_genre(self, ml100k: Dataset) -> None:
        assert set(ml100k.genres["genre"]) == set(ML100K_GENRES)
        assert {"Children's", "Film-Noir", "Sci-Fi"} <= set(ml100k.genres["genre"])
        toy_story = ml100k.genres.loc[ml100k.genres["movie_id"] == 1, "genre"]
        assert set(toy_story) == {"Animation", "Children's", "Comedy"}
        assert not ml100k.genres.duplicated().any()

    def test_credits_come_from_linked_films(self, ml100k: Dataset) -> None:
        credits = ml100k.credits
        assert set(credits["role"]) == {"actor", "director", "writer", "producer", "cinematographer"}
        linked = ml100k.movies.loc[ml100k.movies["freebase_id"].notna(), "movie_id"]
        assert credits["movie_id"].isin(linked).all()
        assert not credits.duplicated().any()
        directed = credits.loc[credits["role"] == "director", "movie_id"].nunique()
        assert directed > 1500
        assert (credits["role"] == "actor").sum() > 30_000

    def test_people_are_the_credited_freebase_ids(self, ml100k: Dataset) -> None:
        assert set(ml100k.people["person_id"]) == set(ml100k.credits["person_id"])
        assert ml100k.people["person_id"].is_unique
        assert ml100k.people["name"].isna().all()
        assert ml100k.tags.empty

    def test_unknown_name_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="ml-1m"):
            load_builtin("ml-1m")

    def test_missing_recbole_says_how_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def not_installed(name: str) -> importlib.metadata.Distribution:
            raise importlib.metadata.PackageNotFoundError(name)

        monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
        with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps recbole==1.2.1")):
            load_builtin()
