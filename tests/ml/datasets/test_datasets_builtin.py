from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from ml.datasets import DataFormatError, Dataset, load_builtin
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

    def test_movies_have_titles_and_years(self, ml100k: Dataset) -> None:
        movies = ml100k.movies.set_index("movie_id")
        assert movies.loc[1, "title"] == "Toy Story"
        assert movies.loc[1, "year"] == 1995
        # Titles keep their inner parentheses; the one suffixed title gets its year back.
        assert movies.loc[11, "title"] == "Seven (Se7en)"
        assert movies.loc[1412, "year"] == 1995
        assert movies.loc[267, "title"] == "unknown"
        assert movies["year"].isna().sum() == 1
        assert movies["imdb_id"].isna().all()

    def test_genres_are_the_19_of_u_genre(self, ml100k: Dataset) -> None:
        assert set(ml100k.genres["genre"]) == set(ML100K_GENRES)
        assert {"Children's", "Film-Noir", "Sci-Fi"} <= set(ml100k.genres["genre"])
        toy_story = ml100k.genres.loc[ml100k.genres["movie_id"] == 1, "genre"]
        assert set(toy_story) == {"Animation", "Children's", "Comedy"}
        assert not ml100k.genres.duplicated().any()

    def test_without_ml1m_titles_no_movie_is_credited_with_another_films_people(
        self, ml100k: Dataset
    ) -> None:
        # the bundled links are keyed by MovieLens 1M ids (see ml/datasets/builtin.py)
        assert ml100k.movies["freebase_id"].isna().all()
        assert ml100k.credits.empty
        assert ml100k.people.empty
        assert ml100k.tags.empty


# Ten real lines of MovieLens 1M movies.dat: enough to check the id translation on well-known films.
ML1M_SAMPLE = Path(__file__).parent / "data" / "ml1m-movies-sample.dat"


@pytest.fixture(scope="module")
def credited() -> Dataset:
    return load_builtin("ml-100k", ml1m_movies=ML1M_SAMPLE)


class TestFreebaseCreditsThroughMl1mIds:
    def people(self, dataset: Dataset, movie_id: int, role: str) -> set[str]:
        credits = dataset.credits
        return set(credits.loc[(credits["movie_id"] == movie_id) & (credits["role"] == role), "person_id"])

    def test_ml1m_ids_are_translated_to_the_same_films_in_ml100k(self, credited: Dataset) -> None:
        linked = credited.movies.dropna(subset=["freebase_id"]).set_index("movie_id")["title"]
        assert dict(linked) == {
            12: "Usual Suspects, The",
            50: "Star Wars",
            127: "Godfather, The",
            144: "Die Hard",
            172: "Empire Strikes Back, The",
            176: "Aliens",
            181: "Return of the Jedi",
            183: "Alien",
            187: "Godfather: Part II, The",
            226: "Die Hard 2",
        }

    def test_sequels_share_their_people(self, credited: Dataset) -> None:
        # Empire and Jedi share the main cast; both Godfathers have Coppola as director
        assert len(self.people(credited, 172, "actor") & self.people(credited, 181, "actor")) >= 10
        assert self.people(credited, 127, "director") == self.people(credited, 187, "director") != set()
        assert self.people(credited, 144, "actor") & self.people(credited, 226, "actor")

    def test_people_are_the_credited_freebase_ids(self, credited: Dataset) -> None:
        assert set(credited.people["person_id"]) == set(credited.credits["person_id"])
        assert credited.people["person_id"].is_unique
        assert credited.people["name"].isna().all()
        assert set(credited.credits["role"]) <= {"actor", "director", "writer", "producer", "cinematographer"}

    def test_a_missing_movies_dat_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r"movies\.dat"):
            load_builtin("ml-100k", ml1m_movies=tmp_path)

    def test_a_malformed_movies_dat_names_the_line(self, tmp_path: Path) -> None:
        bad = tmp_path / "movies.dat"
        bad.write_text("1::Toy Story (1995)::Animation\nnot a movie line\n")
        with pytest.raises(DataFormatError, match=r"movies\.dat:2"):
            load_builtin("ml-100k", ml1m_movies=bad)


class TestBuiltinNames:
    def test_unknown_name_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="ml-1m"):
            load_builtin("ml-1m")

    def test_missing_recbole_says_how_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def not_installed(name: str) -> importlib.metadata.Distribution:
            raise importlib.metadata.PackageNotFoundError(name)

        monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
        with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps recbole==1.2.1")):
            load_builtin()
