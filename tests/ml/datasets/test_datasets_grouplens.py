from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.datasets import DataFormatError, Dataset, generate, grouplens, load_path, write_grouplens
from ml.datasets.grouplens import GroupLensFormat, split_title

FORMATS: tuple[GroupLensFormat, ...] = ("ml-100k", "ml-1m", "ml-latest")
MOVIES_CSV = "movieId,title,genres\n1,Toy Story (1995),Animation|Children's|Comedy\n2,Heat (1995),Action\n"


def small_dataset() -> Dataset:
    """A hand-made dataset with the awkward cases: inner parentheses, commas, accents, no year."""
    movies = pd.DataFrame(
        {
            "movie_id": np.array([1, 2, 5, 9], dtype=np.int64),
            "title": pd.Series(
                [
                    "Toy Story",
                    "City of Lost Children, The (Cité des enfants perdus, La)",
                    "Seven (Se7en)",
                    "Untitled Project",
                ],
                dtype="str",
            ),
            "year": pd.array([1995, 1995, 1995, None], dtype="Int64"),
            "imdb_id": pd.array([114709, 112682, None, None], dtype="Int64"),
            "tmdb_id": pd.array([862, None, 807, None], dtype="Int64"),
            "freebase_id": pd.Series([None] * 4, dtype="str"),
        }
    )
    ratings = pd.DataFrame(
        {
            "user_id": np.array([1, 1, 2, 3, 3], dtype=np.int64),
            "movie_id": np.array([1, 2, 5, 1, 9], dtype=np.int64),
            "rating": np.array([4.0, 3.5, 5.0, 0.5, 2.0], dtype=np.float32),
            "timestamp": np.array([881250949, 881250950, 891717742, 978300760, 978300761], dtype=np.int64),
        }
    )
    users = pd.DataFrame(
        {
            "user_id": np.array([1, 2, 3], dtype=np.int64),
            "age": pd.array([24, 53, None], dtype="Int64"),
            "gender": pd.Series(["M", "F", "M"], dtype="str"),
            "occupation": pd.Series(["programmer", "writer", "programmer"], dtype="str"),
            "zip_code": pd.Series(["85711", "94043", "T8H1N"], dtype="str"),
        }
    )
    genres = pd.DataFrame(
        {
            "movie_id": np.array([1, 1, 1, 2, 5, 5], dtype=np.int64),
            "genre": pd.Series(
                ["Animation", "Children's", "Comedy", "Film-Noir", "Crime", "Sci-Fi"], dtype="str"
            ),
        }
    )
    tags = pd.DataFrame(
        {
            "user_id": np.array([1, 3], dtype=np.int64),
            "movie_id": np.array([1, 9], dtype=np.int64),
            "tag": pd.Series(['pixar, "funny"', "slow"], dtype="str"),
            "timestamp": np.array([881250960, 978300770], dtype=np.int64),
        }
    )
    return Dataset("small", ratings=ratings, movies=movies, users=users, genres=genres, tags=tags)


def zip_folder(folder: Path, archive: Path, *, top: str | None) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, f"{top}/{file.name}" if top else file.name)
    return archive


def sorted_genres(genres: pd.DataFrame) -> pd.DataFrame:
    return genres.sort_values(["movie_id", "genre"], ignore_index=True)


def write(folder: Path, files: Mapping[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


class TestRoundTrip:
    @pytest.mark.parametrize("fmt", FORMATS)
    @pytest.mark.parametrize("container", ["folder", "zip", "zip-with-folder"])
    def test_synthetic_data_survives_each_format(
        self, tmp_path: Path, fmt: GroupLensFormat, container: str, check_contract
    ) -> None:
        # given
        dataset = generate(3_000, seed=7)
        folder = write_grouplens(dataset, tmp_path / fmt, fmt)
        source = folder
        if container != "folder":
            top = "ml-test" if container == "zip-with-folder" else None
            source = zip_folder(folder, tmp_path / "data.zip", top=top)
        # when
        loaded = load_path(source)
        # then
        check_contract(loaded)
        pd.testing.assert_frame_equal(loaded.ratings, dataset.ratings)
        expected_movies = dataset.movies.assign(freebase_id=pd.Series(np.nan, dtype="str"))
        pd.testing.assert_frame_equal(loaded.movies, expected_movies)
        pd.testing.assert_frame_equal(sorted_genres(loaded.genres), sorted_genres(dataset.genres))
        if fmt == "ml-latest":
            assert loaded.users.empty
        elif fmt == "ml-100k":
            pd.testing.assert_frame_equal(loaded.users, dataset.users)
        assert loaded.name == {"folder": fmt, "zip": "data", "zip-with-folder": "ml-test"}[container]

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_awkward_titles_users_and_tags(self, tmp_path: Path, fmt: GroupLensFormat) -> None:
        dataset = small_dataset()
        loaded = load_path(write_grouplens(dataset, tmp_path, fmt))
        pd.testing.assert_frame_equal(loaded.ratings, dataset.ratings)
        pd.testing.assert_frame_equal(
            loaded.movies[["movie_id", "title", "year"]], dataset.movies[["movie_id", "title", "year"]]
        )
        pd.testing.assert_frame_equal(sorted_genres(loaded.genres), sorted_genres(dataset.genres))
        if fmt == "ml-latest":
            pd.testing.assert_frame_equal(
                loaded.movies[["imdb_id", "tmdb_id"]], dataset.movies[["imdb_id", "tmdb_id"]]
            )
        else:
            pd.testing.assert_frame_equal(loaded.users, dataset.users)
        if fmt == "ml-100k":
            assert loaded.tags.empty
        else:
            pd.testing.assert_frame_equal(loaded.tags, dataset.tags)

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_writes_without_pyarrow(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: GroupLensFormat
    ) -> None:
        dataset = small_dataset()
        monkeypatch.setattr(grouplens, "pa_csv", None)
        write_grouplens(dataset, tmp_path, fmt)
        pd.testing.assert_frame_equal(load_path(tmp_path).ratings, dataset.ratings)

    def test_ml100k_flags_follow_u_genre(self, tmp_path: Path) -> None:
        folder = write_grouplens(small_dataset(), tmp_path, "ml-100k")
        assert (folder / "u.genre").read_text().splitlines()[:2] == ["unknown|0", "Action|1"]
        toy_story = (folder / "u.item").read_text(encoding="latin-1").splitlines()[0]
        assert toy_story == "1|Toy Story (1995)|01-Jan-1995|||0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"


class TestSplitTitle:
    @pytest.mark.parametrize(
        ("source", "title", "year"),
        [
            ("Toy Story (1995)", "Toy Story", 1995),
            ("City of Lost Children, The (Cité des enfants perdus, La) (1995)",
             "City of Lost Children, The (Cité des enfants perdus, La)", 1995),
            ("Seven (Se7en) (1995)", "Seven (Se7en)", 1995),
            ("Babylon 5 (1994-1998)", "Babylon 5", 1994),
            ("Nocturnal Animals (2016) ", "Nocturnal Animals", 2016),
            ("Ready Player One", "Ready Player One", None),
            ("Paris, Texas (Director's Cut)", "Paris, Texas (Director's Cut)", None),
            ("1984 (1984)", "1984", 1984),
        ],
    )  # fmt: skip
    def test_splits_a_trailing_year(self, source: str, title: str, year: int | None) -> None:
        titles, years = split_title(pd.Series([source], dtype="str"))
        assert titles.iloc[0] == title
        assert (pd.isna(years.iloc[0]) and year is None) or years.iloc[0] == year


class TestDuplicates:
    def test_keeps_the_latest_rating(self, tmp_path: Path) -> None:
        folder = write(
            tmp_path / "ml-latest-small",
            {
                "movies.csv": MOVIES_CSV,
                "ratings.csv": "userId,movieId,rating,timestamp\n"
                "1,1,2.0,100\n1,2,3.0,100\n1,1,4.5,300\n1,1,3.0,200\n2,2,1.0,50\n2,2,5.0,50\n",
            },
        )
        ratings = load_path(folder).ratings
        assert ratings.to_dict("list") == {
            "user_id": [1, 1, 2],
            "movie_id": [2, 1, 2],
            "rating": [3.0, 4.5, 5.0],  # on a timestamp tie the later line wins
            "timestamp": [100, 300, 50],
        }


class TestEncoding:
    def test_latin1_falls_back(self, tmp_path: Path) -> None:
        movies = "1::Cité des enfants perdus, La (1995)::Drama\n2::Heat (1995)::Action|Crime\n"
        folder = write(
            tmp_path, {"movies.dat": movies.encode("latin-1"), "ratings.dat": "1::1::5::978300760\n"}
        )
        assert load_path(folder).movies["title"].iloc[0] == "Cité des enfants perdus, La"

    def test_utf8_is_read_as_utf8(self, tmp_path: Path) -> None:
        movies = (
            'movieId,title,genres\n1,"Amélie (Fabuleux destin d\'Amélie Poulain, Le) (2001)",Comedy|Romance\n'
        )
        folder = write(
            tmp_path, {"movies.csv": movies, "ratings.csv": "userId,movieId,rating,timestamp\n1,1,5,1\n"}
        )
        assert load_path(folder).movies["title"].iloc[0] == "Amélie (Fabuleux destin d'Amélie Poulain, Le)"

    def test_no_genres_listed_gives_no_genre_rows(self, tmp_path: Path) -> None:
        movies = "movieId,title,genres\n1,Heat (1995),Action\n2,Ready Player One,(no genres listed)\n"
        folder = write(
            tmp_path, {"movies.csv": movies, "ratings.csv": "userId,movieId,rating,timestamp\n1,2,5,1\n"}
        )
        loaded = load_path(folder)
        assert loaded.genres["movie_id"].tolist() == [1]
        assert loaded.movies["year"].isna().tolist() == [False, True]


RATINGS_HEADER = "userId,movieId,rating,timestamp\n"


class TestMalformed:
    @pytest.mark.parametrize(
        ("files", "file", "line", "reason"),
        [
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,1,4,100\n1,2,4,100\n2,1,4,100,7\n"},
                "ratings.csv", 4, "expected 4 fields, found 5", id="too-many-fields",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,1,4,100\n1,2,4\n"},
                "ratings.csv", 3, "expected 4 fields, found 3", id="too-few-fields",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,1,4,100\n\n1,2,4,2020-01-01\n"},
                "ratings.csv", 4, "timestamp '2020-01-01'", id="bad-timestamp-after-blank-line",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,1,4,100\n1,2,5.5,100\n"},
                "ratings.csv", 3, "rating 5.5 is outside 0.5-5", id="rating-out-of-range",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,1,4,100\n1,2,0,100\n"},
                "ratings.csv", 3, "rating 0 is outside", id="zero-rating",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,1,4,100\n\n1,3,4,100\n"},
                "ratings.csv", 4, "movie id 3 is not in movies.csv", id="unknown-movie",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV, "ratings.csv": "user,movie,rating,time\n1,1,4,100\n"},
                "ratings.csv", 1, "expected header", id="wrong-header",
            ),
            pytest.param(
                {"movies.csv": MOVIES_CSV.replace("2,Heat", "2,Heat, The"), "ratings.csv": RATINGS_HEADER},
                "movies.csv", 3, "expected 3 fields, found 4", id="unquoted-comma-in-title",
            ),
            pytest.param(
                {"movies.dat": "1::Heat (1995)::Action\n", "ratings.dat": "1::1::5::978300760\n1::x1::4::978300761\n"},
                "ratings.dat", 2, "movie id 'x1'", id="non-integer-movie-id",
            ),
            pytest.param(
                {"movies.dat": "1::Heat (1995)::Action\n", "ratings.dat": "1::1::5::1\n2::1::4::2\n3::1::good::3\n"},
                "ratings.dat", 3, "rating 'good' is not a number", id="non-numeric-rating",
            ),
            pytest.param(
                {"movies.dat": "1::Heat (1995)::Action\n", "ratings.dat": "1::1::5::1\n2:1::4::2\n"},
                "ratings.dat", 2, "expected 4 fields, found 3", id="single-colon",
            ),
            pytest.param(
                {"movies.dat": "1::Heat (1995)::Action\nA::Up (2009)::Comedy\n", "ratings.dat": "1::1::5::1\n"},
                "movies.dat", 2, "movie id 'A'", id="non-integer-movie-id-in-movies",
            ),
            pytest.param(
                {"movies.dat": "1::Heat (1995)::Action\n1::Up (2009)::Comedy\n", "ratings.dat": "1::1::5::1\n"},
                "movies.dat", 2, "duplicate movie id 1", id="duplicate-movie",
            ),
            pytest.param(
                {"u.item": "1|Heat (1995)|01-Jan-1995|||0|1\n", "u.data": "1\t1\t5\t1\n"},
                "u.item", 1, "expected 24 fields, found 7", id="short-u-item",
            ),
            pytest.param(
                {"u.item": "1|Heat (1995)|01-Jan-1995||" + "|0" * 19 + "\n", "u.data": "1\t1\t5\t1\nabc\t1\t5\t1\n"},
                "u.data", 2, "user id 'abc'", id="non-integer-user-id",
            ),
        ],
    )  # fmt: skip
    def test_names_file_and_line(
        self, tmp_path: Path, files: dict[str, str], file: str, line: int, reason: str
    ) -> None:
        with pytest.raises(DataFormatError) as error:
            load_path(write(tmp_path / "data", files))
        assert (error.value.file, error.value.line) == (file, line)
        assert reason in error.value.reason

    def test_reports_the_first_bad_line_of_a_big_file(self, tmp_path: Path) -> None:
        rows = np.arange(1, 50_001)
        body = "".join(f"{u},1,4,100\n" for u in rows)
        lines = body.splitlines(keepends=True)
        lines[40_000] = "40001,1,4,yesterday\n"
        lines[45_000] = "45001,1,9,100\n"
        folder = write(tmp_path, {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "".join(lines)})
        with pytest.raises(DataFormatError) as error:
            load_path(folder)
        assert (error.value.line, error.value.reason) == (
            40_002,
            "timestamp 'yesterday' is not a unix time in seconds",
        )

    def test_missing_movies_file(self, tmp_path: Path) -> None:
        folder = write(tmp_path, {"ratings.csv": RATINGS_HEADER + "1,1,4,100\n"})
        with pytest.raises(DataFormatError) as error:
            load_path(folder)
        assert (error.value.file, error.value.line) == ("movies.csv", None)

    def test_no_ratings_file(self, tmp_path: Path) -> None:
        folder = write(tmp_path, {"movies.csv": MOVIES_CSV})
        with pytest.raises(DataFormatError, match="no MovieLens ratings file"):
            load_path(folder)

    def test_not_a_folder_or_zip(self, tmp_path: Path) -> None:
        with pytest.raises(DataFormatError, match=r"not a folder or a \.zip"):
            load_path(write(tmp_path, {"ratings.csv": RATINGS_HEADER}) / "ratings.csv")

    def test_error_in_a_zip_names_the_file(self, tmp_path: Path) -> None:
        folder = write(
            tmp_path / "ml-latest-small",
            {"movies.csv": MOVIES_CSV, "ratings.csv": RATINGS_HEADER + "1,9,4,1\n"},
        )
        archive = zip_folder(folder, tmp_path / "ml.zip", top="ml-latest-small")
        with pytest.raises(DataFormatError) as error:
            load_path(archive)
        assert (error.value.file, error.value.line) == ("ratings.csv", 2)
