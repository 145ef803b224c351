"""Readers and writers for the GroupLens MovieLens file formats.

Three layouts are recognised, in a folder or a .zip (with or without one top-level folder):

- ml-100k: `u.data` (tab-separated), `u.item` (`|`-separated, latin-1, 19 genre flags in `u.genre`
  order), optional `u.user` and `u.genre`.
- ml-1m / ml-10m: `ratings.dat`, `movies.dat`, optional `users.dat` and `tags.dat`, `::`-separated.
- ml-latest-small / ml-25m / ml-32m: `ratings.csv`, `movies.csv`, optional `links.csv` and
  `tags.csv`, comma-separated with a header.

Ratings files can hold tens of millions of rows, so they are parsed by the pandas C engine with
fixed dtypes; only when that fails (or a value is out of range) is the file scanned again, chunk
by chunk and still vectorised, to name the first bad line.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Literal, get_args

import numpy as np
import pandas as pd

from ml.datasets.base import DataFormatError, Dataset

try:  # optional: writes ratings files about 5x faster than pandas
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
except ImportError:
    pa = pa_csv = None

GroupLensFormat = Literal["ml-100k", "ml-1m", "ml-latest"]

# The genre columns of ml-100k `u.item`, in `u.genre` order.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# ml-1m `users.dat` stores occupations as these codes (see the ml-1m README).
ML1M_OCCUPATIONS = (
    "other or not specified",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)
NO_GENRES = "(no genres listed)"
MIN_RATING, MAX_RATING = 0.5, 5.0

# Marker file of each layout, most specific first.
_MARKERS: tuple[tuple[str, GroupLensFormat], ...] = (
    ("ratings.csv", "ml-latest"),
    ("ratings.dat", "ml-1m"),
    ("u.data", "ml-100k"),
)
_RATINGS_HEADER = ("userId", "movieId", "rating", "timestamp")
# Lines per chunk when a ratings file is scanned for its first bad line: about 100 MB of strings.
_SCAN_CHUNK_LINES = 1_000_000
# "Title (1995)", "Title (1995-1998)", "Title (2007-)"; the lazy title keeps inner parentheses.
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
# A quoted CSV field, to count the separators outside quotes.
_QUOTED = r'"(?:[^"]|"")*"'
_UINT = r"\s*\d+\s*"


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def load_path(path: Path | str) -> Dataset:
    """Read a MovieLens dataset from a folder or a .zip, detecting its GroupLens layout.

    Duplicate (user, movie) ratings keep the one with the latest timestamp (the later line on a tie),
    as a user re-rating a movie replaces the old rating. Text is decoded as UTF-8, or as latin-1
    when it is not valid UTF-8.

    Args:
        path: A folder, or a .zip file, holding the files directly or in one top-level folder.

    Returns:
        The dataset, named after the folder holding the files (for instance "ml-25m").

    Raises:
        DataFormatError: If no layout is recognised, a required file is missing, or a line is
            malformed (wrong field count, non-integer id, rating not a number in 0.5-5, bad
            timestamp, rating of a movie absent from the movies file). `line` is 1-based.
    """
    with _Source(Path(path)) as source:
        if source.format == "ml-latest":
            return _load_latest(source)
        if source.format == "ml-1m":
            return _load_dat(source)
        return _load_100k(source)


def split_title(titles: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Split MovieLens titles such as "Heat (1995)" into the title and the year.

    Args:
        titles: Titles as the source spells them.

    Returns:
        The titles without a trailing year (otherwise unchanged apart from surrounding spaces), and
        the years as Int64 (NA when the title has no year).
    """
    stripped = titles.astype("str").str.strip()
    parts = stripped.str.extract(_TITLE_YEAR)
    has_year = parts["year"].notna()
    title = stripped.where(~has_year, parts["title"]).astype("str")
    year = pd.to_numeric(parts["year"]).astype("Int64")
    return title, year


class _Source:
    """The files of one dataset, in a folder or a zip, found under the folder holding the marker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_dir():
            files = [p.relative_to(path).as_posix() for p in _shallow_files(path)]
        elif path.is_file() and zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            files = [n for n in self._zip.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
        else:
            raise DataFormatError(str(path), None, "not a folder or a .zip file")
        self.prefix, self.format = self._detect(files)
        self.files = {f[len(self.prefix) :] for f in files if f.startswith(self.prefix)}
        inner = PurePosixPath(self.prefix).name
        self.name = inner or (path.stem if self._zip is not None else path.name)

    def _detect(self, files: Sequence[str]) -> tuple[str, GroupLensFormat]:
        for depth in (0, 1):
            for marker, fmt in _MARKERS:
                for file in files:
                    parts = PurePosixPath(file).parts
                    if len(parts) == depth + 1 and parts[-1] == marker:
                        return "".join(f"{part}/" for part in parts[:-1]), fmt
        raise DataFormatError(
            str(self.path), None, "no MovieLens ratings file (ratings.csv, ratings.dat or u.data) found"
        )

    def has(self, file: str) -> bool:
        return file in self.files

    def require(self, file: str) -> None:
        if not self.has(file):
            raise DataFormatError(file, None, f"required file is missing from {self.path}")

    def open(self, file: str) -> IO[bytes]:
        self.require(file)
        if self._zip is not None:
            return self._zip.open(self.prefix + file)
        return (self.path / self.prefix / file).open("rb")

    def read_text(self, file: str) -> str:
        with self.open(file) as handle:
            raw = handle.read()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")

    def __enter__(self) -> _Source:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._zip is not None:
            self._zip.close()


def _shallow_files(folder: Path) -> Iterator[Path]:
    """Files in `folder` and its direct subfolders (a dataset is never deeper)."""
    for child in folder.iterdir():
        if child.is_file():
            yield child
        elif child.is_dir():
            yield from (grandchild for grandchild in child.iterdir() if grandchild.is_file())


# -- per layout -------------------------------------------------------------------------------------


def _load_latest(source: _Source) -> Dataset:
    source.require("movies.csv")
    fields = _read_table(source, "movies.csv", ("movieId", "title", "genres"), sep=",", header=True)
    movies, genres = _movies_from_fields("movies.csv", fields, genre_sep="|")
    if source.has("links.csv"):
        links = _read_table(source, "links.csv", ("movieId", "imdbId", "tmdbId"), sep=",", header=True)
        link_ids = pd.Index(_uint_column("links.csv", links, "movieId", "movie id"))
        imdb = pd.Series(
            _optional_int_column("links.csv", links, "imdbId", "IMDb id").to_numpy(), index=link_ids
        )
        tmdb = pd.Series(
            _optional_int_column("links.csv", links, "tmdbId", "TMDB id").to_numpy(), index=link_ids
        )
        imdb, tmdb = imdb[~link_ids.duplicated()], tmdb[~link_ids.duplicated()]
        movies["imdb_id"] = movies["movie_id"].map(imdb).astype("Int64")
        movies["tmdb_id"] = movies["movie_id"].map(tmdb).astype("Int64")
    ratings = _read_ratings(source, "ratings.csv", sep=",", header=True)
    ratings = _check_and_dedupe(source, "ratings.csv", ratings, movies, "movies.csv", header=True)
    tags = empty_table("tags")
    if source.has("tags.csv"):
        table = _read_table(
            source, "tags.csv", ("userId", "movieId", "tag", "timestamp"), sep=",", header=True
        )
        tags = _tags_from_fields("tags.csv", table, movies, "movies.csv")
    return _dataset(source.name, ratings, movies, genres, empty_table("users"), tags)


def _load_dat(source: _Source) -> Dataset:
    source.require("movies.dat")
    fields = _read_table(source, "movies.dat", ("movieId", "title", "genres"), sep="::", text_column="title")
    movies, genres = _movies_from_fields("movies.dat", fields, genre_sep="|")
    ratings = _read_ratings(source, "ratings.dat", sep="::", header=False)
    ratings = _check_and_dedupe(source, "ratings.dat", ratings, movies, "movies.dat", header=False)
    users = empty_table("users")
    if source.has("users.dat"):
        table = _read_table(source, "users.dat", ("userId", "gender", "age", "occupation", "zip"), sep="::")
        codes = _optional_int_column("users.dat", table, "occupation", "occupation code")
        out_of_range = codes.notna() & ((codes < 0) | (codes >= len(ML1M_OCCUPATIONS)))
        _raise_first(
            "users.dat",
            [(out_of_range, lambda line: f"unknown occupation code {table.at[line, 'occupation']!r}")],
        )
        occupation = codes.map(dict(enumerate(ML1M_OCCUPATIONS)))
        users = _users_frame("users.dat", table, occupation)
    tags = empty_table("tags")
    if source.has("tags.dat"):
        table = _read_table(
            source, "tags.dat", ("userId", "movieId", "tag", "timestamp"), sep="::", text_column="tag"
        )
        tags = _tags_from_fields("tags.dat", table, movies, "movies.dat")
    return _dataset(source.name, ratings, movies, genres, users, tags)


def _load_100k(source: _Source) -> Dataset:
    source.require("u.item")
    genre_names = ML100K_GENRES
    if source.has("u.genre"):
        table = _read_table(source, "u.genre", ("genre", "index"), sep="|")
        order = _uint_column("u.genre", table, "index", "genre index")
        genre_names = tuple(table["genre"].to_numpy()[np.argsort(order.to_numpy(), kind="stable")])
    flag_columns = tuple(f"flag_{i}" for i in range(len(genre_names)))
    columns = ("movieId", "title", "release_date", "video_release_date", "imdb_url", *flag_columns)
    fields = _read_table(source, "u.item", columns, sep="|")
    movie_ids = _uint_column("u.item", fields, "movieId", "movie id")
    _raise_duplicate_ids("u.item", movie_ids, "movie id")
    title, year = split_title(fields["title"])
    # Titles without a year ("unknown", "... (1995) (V)") fall back on the release date, "01-Jan-1995".
    release_year = pd.to_numeric(fields["release_date"].str.extract(r"(\d{4})\s*$")[0]).astype("Int64")
    year = year.fillna(release_year)
    movies = _movies_frame(movie_ids, title, year)

    flags = fields[list(flag_columns)]
    not_flag = ~flags.isin(["0", "1"])
    _raise_first("u.item", [(not_flag.any(axis=1), lambda line: "genre flags must be 0 or 1")])
    rows, cols = np.nonzero(flags.to_numpy() == "1")
    genres = pd.DataFrame(
        {
            "movie_id": movie_ids.to_numpy()[rows],
            "genre": pd.Series(np.asarray(genre_names, dtype=object)[cols], dtype="str"),
        }
    )

    ratings = _read_ratings(source, "u.data", sep="\t", header=False)
    ratings = _check_and_dedupe(source, "u.data", ratings, movies, "u.item", header=False)
    users = empty_table("users")
    if source.has("u.user"):
        table = _read_table(source, "u.user", ("userId", "age", "gender", "occupation", "zip"), sep="|")
        users = _users_frame("u.user", table, table["occupation"])
    return _dataset(source.name, ratings, movies, genres, users, empty_table("tags"))


def _dataset(
    name: str,
    ratings: pd.DataFrame,
    movies: pd.DataFrame,
    genres: pd.DataFrame,
    users: pd.DataFrame,
    tags: pd.DataFrame,
) -> Dataset:
    return Dataset(
        name=name,
        ratings=ratings,
        movies=movies,
        users=users,
        genres=genres,
        people=empty_table("people"),
        credits=empty_table("credits"),
        tags=tags,
    )


# -- small text files: fields indexed by line number ---------------------------------------------------


def _lines(text: str) -> pd.Series:
    """Lines of `text` indexed by their 1-based line number; splits on newlines only."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    series = pd.Series(lines, dtype="str", index=pd.RangeIndex(1, len(lines) + 1))
    return series.str.removesuffix("\r")


def _read_table(
    source: _Source,
    file: str,
    columns: Sequence[str],
    *,
    sep: str,
    header: bool = False,
    text_column: str | None = None,
) -> pd.DataFrame:
    """Fields of a small text file as strings, indexed by 1-based line number; blank lines skipped.

    `sep="," ` is read as CSV (fields may be quoted). `text_column` may hold the separator: it takes
    whatever lies between the fields before it and those after it.
    """
    lines = _lines(source.read_text(file))
    if header:
        first = lines.iloc[0] if len(lines) else ""
        names = [name.strip().strip('"') for name in first.split(sep)]
        if names != list(columns):
            raise DataFormatError(file, 1, f"expected header {sep.join(columns)!r}, found {first!r}")
        lines = lines.iloc[1:]
    lines = lines[lines.str.strip() != ""]
    n = len(columns)
    if sep == ",":
        counts = lines.str.replace(_QUOTED, "", regex=True).str.count(",") + 1
    else:
        counts = lines.str.count(re.escape(sep)) + 1
    wrong = counts < n if text_column is not None else counts != n
    _raise_first(file, [(wrong, lambda line: f"expected {n} fields, found {counts[line]}")])

    if sep == ",":
        fields = pd.read_csv(
            io.StringIO("\n".join(lines)),
            header=None,
            names=list(columns),
            dtype="str",
            keep_default_na=False,
            engine="c",
        )
        if len(fields) != len(lines):  # a quoted field spanning lines: numbers become record numbers
            raise DataFormatError(file, None, "quoted fields spanning several lines are not supported")
        fields.index = lines.index
        return fields
    if text_column is None:
        fields = lines.str.split(sep, n=n - 1, expand=True, regex=False)
    else:
        before = list(columns).index(text_column)
        head = lines.str.split(sep, n=before, expand=True, regex=False)
        tail = head[before].str.rsplit(sep, n=n - before - 1, expand=True)
        fields = pd.concat([head.iloc[:, :before], tail], axis=1)
    fields.columns = list(columns)
    return fields


def _raise_first(file: str, checks: Sequence[tuple[pd.Series, Callable[[int], str]]]) -> None:
    """Raise for the earliest line flagged by any check (masks are indexed by line number)."""
    first: tuple[int, str] | None = None
    for bad, reason in checks:
        if bool(bad.any()):
            mask = bad.to_numpy(dtype=bool)
            line = int(bad.index.to_numpy()[mask.argmax()])
            if first is None or line < first[0]:
                first = (line, reason(line))
    if first is not None:
        raise DataFormatError(file, first[0], first[1])


def _uint_column(file: str, fields: pd.DataFrame, column: str, label: str) -> pd.Series:
    values = fields[column]
    bad = ~values.str.fullmatch(_UINT)
    _raise_first(file, [(bad, lambda line: f"{label} {values[line]!r} is not a non-negative integer")])
    return values.astype("int64")


def _optional_int_column(file: str, fields: pd.DataFrame, column: str, label: str) -> pd.Series:
    values = fields[column].str.strip()
    bad = (values != "") & ~values.str.fullmatch(r"-?\d+")
    _raise_first(file, [(bad, lambda line: f"{label} {values[line]!r} is not an integer")])
    return pd.to_numeric(values.replace("", None)).astype("Int64")


def _timestamp_column(file: str, fields: pd.DataFrame, column: str) -> pd.Series:
    values = fields[column]
    bad = ~values.str.fullmatch(_UINT)
    _raise_first(file, [(bad, lambda line: f"timestamp {values[line]!r} is not a unix time in seconds")])
    return values.astype("int64")


def _raise_duplicate_ids(file: str, ids: pd.Series, label: str) -> None:
    duplicated = ids.duplicated()
    _raise_first(file, [(duplicated, lambda line: f"duplicate {label} {ids[line]}")])


def _movies_from_fields(
    file: str, fields: pd.DataFrame, *, genre_sep: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    movie_ids = _uint_column(file, fields, "movieId", "movie id")
    _raise_duplicate_ids(file, movie_ids, "movie id")
    title, year = split_title(fields["title"])
    movies = _movies_frame(movie_ids, title, year)
    tokens = pd.DataFrame({"movie_id": movie_ids, "genre": fields["genres"].str.split(genre_sep)})
    tokens = tokens.explode("genre")
    tokens["genre"] = tokens["genre"].str.strip()
    tokens = tokens[tokens["genre"].notna() & (tokens["genre"] != "") & (tokens["genre"] != NO_GENRES)]
    genres = pd.DataFrame(
        {
            "movie_id": tokens["movie_id"].to_numpy(dtype="int64"),
            "genre": pd.Series(tokens["genre"].to_numpy(), dtype="str"),
        }
    ).drop_duplicates(ignore_index=True)
    return movies, genres


def _movies_frame(movie_ids: pd.Series, title: pd.Series, year: pd.Series) -> pd.DataFrame:
    n = len(movie_ids)
    return pd.DataFrame(
        {
            "movie_id": movie_ids.to_numpy(dtype="int64"),
            "title": pd.Series(title.to_numpy(), dtype="str"),
            "year": pd.Series(year.to_numpy(), dtype="Int64"),
            "imdb_id": pd.Series(pd.NA, index=range(n), dtype="Int64"),
            "tmdb_id": pd.Series(pd.NA, index=range(n), dtype="Int64"),
            "freebase_id": pd.Series(np.nan, index=range(n), dtype="str"),
        }
    )


def _users_frame(file: str, table: pd.DataFrame, occupation: pd.Series) -> pd.DataFrame:
    user_ids = _uint_column(file, table, "userId", "user id")
    _raise_duplicate_ids(file, user_ids, "user id")
    age = _optional_int_column(file, table, "age", "age")
    return pd.DataFrame(
        {
            "user_id": user_ids.to_numpy(dtype="int64"),
            "age": pd.Series(age.to_numpy(), dtype="Int64"),
            "gender": pd.Series(table["gender"].str.strip().replace("", None).to_numpy(), dtype="str"),
            "occupation": pd.Series(occupation.replace("", None).to_numpy(), dtype="str"),
            "zip_code": pd.Series(table["zip"].str.strip().replace("", None).to_numpy(), dtype="str"),
        }
    )


def _tags_from_fields(file: str, table: pd.DataFrame, movies: pd.DataFrame, movies_file: str) -> pd.DataFrame:
    user_ids = _uint_column(file, table, "userId", "user id")
    movie_ids = _uint_column(file, table, "movieId", "movie id")
    timestamps = _timestamp_column(file, table, "timestamp")
    unknown = ~movie_ids.isin(movies["movie_id"])
    _raise_first(file, [(unknown, lambda line: f"movie id {movie_ids[line]} is not in {movies_file}")])
    return pd.DataFrame(
        {
            "user_id": user_ids.to_numpy(dtype="int64"),
            "movie_id": movie_ids.to_numpy(dtype="int64"),
            "tag": pd.Series(table["tag"].to_numpy(), dtype="str"),
            "timestamp": timestamps.to_numpy(dtype="int64"),
        }
    )


_EMPTY_DTYPES: dict[str, dict[str, str]] = {
    "users": {"user_id": "int64", "age": "Int64", "gender": "str", "occupation": "str", "zip_code": "str"},
    "people": {"person_id": "str", "name": "str"},
    "credits": {"movie_id": "int64", "person_id": "str", "role": "str"},
    "tags": {"user_id": "int64", "movie_id": "int64", "tag": "str", "timestamp": "int64"},
}


def empty_table(table: Literal["users", "people", "credits", "tags"]) -> pd.DataFrame:
    """A table with no rows and the contract's columns and dtypes.

    Args:
        table: One of the optional tables of a `Dataset`.

    Returns:
        The empty data frame.
    """
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _EMPTY_DTYPES[table].items()})


# -- ratings: large files ---------------------------------------------------------------------------


_RATING_DTYPES = {"user_id": "int64", "movie_id": "int64", "rating": "float32", "timestamp": "int64"}


def _read_ratings(source: _Source, file: str, *, sep: str, header: bool) -> pd.DataFrame:
    """Ratings in file order, typed; raises DataFormatError naming the first bad line."""
    if header:
        with source.open(file) as handle:
            first = handle.readline().decode("latin-1").strip()
        if [name.strip() for name in first.split(sep)] != list(_RATINGS_HEADER):
            raise DataFormatError(file, 1, f"expected header {sep.join(_RATINGS_HEADER)!r}, found {first!r}")
    try:
        with source.open(file) as handle:
            frame = _parse_ratings(handle, sep=sep, header=header)
    except (ValueError, OverflowError) as exc:
        _scan_ratings(source, file, sep=sep, header=header)
        raise DataFormatError(file, None, f"cannot parse ratings: {exc}") from exc
    bad = (
        frame["rating"].isna()
        | (frame["rating"] < MIN_RATING)
        | (frame["rating"] > MAX_RATING)
        | (frame["user_id"] < 0)
        | (frame["movie_id"] < 0)
        | (frame["timestamp"] < 0)
    )
    if bool(bad.any()):
        _scan_ratings(source, file, sep=sep, header=header)
        line = _physical_line(source, file, header=header, row=int(bad.to_numpy().argmax()))
        raise DataFormatError(file, line, "invalid rating row")
    return frame


def _parse_ratings(handle: IO[bytes], *, sep: str, header: bool) -> pd.DataFrame:
    """The fast path: the C parser with fixed dtypes, which raises on any malformed line."""
    if sep == "::":
        # The C parser only takes one-character separators (a longer one means the slow Python
        # engine): split on ":" and check that every other column is empty.
        names = ["user_id", "_1", "movie_id", "_2", "rating", "_3", "timestamp"]
        dtype = {**_RATING_DTYPES, "_1": "float32", "_2": "float32", "_3": "float32"}
        frame = pd.read_csv(
            handle,
            sep=":",
            header=None,
            names=names,
            dtype=dtype,
            engine="c",
            quoting=csv.QUOTE_NONE,
            encoding="latin-1",
        )
        if not bool(frame[["_1", "_2", "_3"]].isna().all(axis=None)):
            raise ValueError("a field is separated by a single ':'")
        return frame.drop(columns=["_1", "_2", "_3"])
    return pd.read_csv(
        handle,
        sep=sep,
        header=None,
        skiprows=1 if header else 0,
        names=list(_RATING_DTYPES),
        dtype=_RATING_DTYPES,
        engine="c",
        quoting=csv.QUOTE_NONE,
        encoding="latin-1",
    )


def _raw_line_chunks(source: _Source, file: str) -> Iterator[pd.Series]:
    """The file's lines in chunks, each indexed by 1-based line number."""
    with source.open(file) as handle:
        text = io.TextIOWrapper(handle, encoding="latin-1", newline="")
        start = 1
        while True:
            chunk = list(itertools.islice(text, _SCAN_CHUNK_LINES))
            if not chunk:
                return
            lines = pd.Series(chunk, dtype="str", index=pd.RangeIndex(start, start + len(chunk)))
            yield lines.str.removesuffix("\n").str.removesuffix("\r")
            start += len(chunk)


def _scan_ratings(source: _Source, file: str, *, sep: str, header: bool) -> None:
    """Raise DataFormatError for the first malformed line; return if there is none."""
    for chunk in _raw_line_chunks(source, file):
        lines = chunk[chunk != ""]  # the C parser skips empty lines only
        if header:
            lines = lines[lines.index != 1]
        _check_rating_lines(file, lines, sep)


def _check_rating_lines(file: str, lines: pd.Series, sep: str) -> None:
    counts = lines.str.count(re.escape(sep)) + 1
    _raise_first(file, [(counts != 4, lambda line: f"expected 4 fields, found {counts[line]}")])
    if lines.empty:
        return
    fields = lines.str.split(sep, n=3, expand=True, regex=False)
    user, movie, rating, timestamp = (fields[i] for i in range(4))
    value = pd.to_numeric(rating, errors="coerce")
    _raise_first(
        file,
        [
            (
                ~user.str.fullmatch(_UINT),
                lambda line: f"user id {user[line]!r} is not a non-negative integer",
            ),
            (
                ~movie.str.fullmatch(_UINT),
                lambda line: f"movie id {movie[line]!r} is not a non-negative integer",
            ),
            (value.isna(), lambda line: f"rating {rating[line]!r} is not a number"),
            (
                (value < MIN_RATING) | (value > MAX_RATING),
                lambda line: f"rating {rating[line].strip()} is outside {MIN_RATING:g}-{MAX_RATING:g}",
            ),
            (
                ~timestamp.str.fullmatch(_UINT),
                lambda line: f"timestamp {timestamp[line]!r} is not a unix time in seconds",
            ),
        ],
    )


def _physical_line(source: _Source, file: str, *, header: bool, row: int) -> int | None:
    """The 1-based line number of data row `row` (0-based, blank lines not counted)."""
    seen = 0
    for chunk in _raw_line_chunks(source, file):
        data = chunk[chunk != ""]
        if header:
            data = data[data.index != 1]
        if row < seen + len(data):
            return int(data.index[row - seen])
        seen += len(data)
    return None


def _check_and_dedupe(
    source: _Source, file: str, ratings: pd.DataFrame, movies: pd.DataFrame, movies_file: str, *, header: bool
) -> pd.DataFrame:
    """Reject ratings of unknown movies, then keep the latest rating of each (user, movie)."""
    unknown = ~ratings["movie_id"].isin(movies["movie_id"])
    if bool(unknown.any()):
        row = int(unknown.to_numpy().argmax())
        movie_id = int(ratings["movie_id"].iloc[row])
        line = _physical_line(source, file, header=header, row=row)
        raise DataFormatError(file, line, f"movie id {movie_id} is not in {movies_file}")
    return keep_latest(ratings)


def keep_latest(ratings: pd.DataFrame) -> pd.DataFrame:
    """Keep one rating per (user, movie): the latest timestamp, then the later row on a tie.

    Args:
        ratings: Ratings with user_id, movie_id and timestamp columns.

    Returns:
        The ratings in their original order without the superseded rows, with a fresh index.
    """
    users = ratings["user_id"].to_numpy()
    movies = ratings["movie_id"].to_numpy()
    span = int(movies.max()) + 1 if len(movies) else 1
    if len(users) and int(users.max()) < np.iinfo(np.int64).max // span:
        keys = users * span + movies
        # GroupLens files are usually sorted by user then movie: then a linear scan suffices.
        if bool(np.all(keys[1:] > keys[:-1])):
            return ratings.reset_index(drop=True)
        keys.sort()
        has_duplicates = bool(np.any(keys[1:] == keys[:-1]))
    else:
        has_duplicates = bool(ratings.duplicated(["user_id", "movie_id"]).any())
    if not has_duplicates:
        return ratings.reset_index(drop=True)
    latest = ratings.sort_values("timestamp", kind="stable").drop_duplicates(
        ["user_id", "movie_id"], keep="last"
    )
    return latest.sort_index().reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def write_grouplens(dataset: Dataset, folder: Path | str, fmt: GroupLensFormat) -> Path:
    """Write a dataset as GroupLens files, so that `load_path(folder)` reads it back.

    Users are written when the format has a users file (ml-100k, ml-1m) and the dataset has users;
    tags when the format has a tags file (ml-1m as in ml-10m, ml-latest). In ml-1m, occupations
    not in its list of 21 are written as code 0, "other or not specified".

    Args:
        dataset: The dataset to write.
        folder: The folder to write into; created if missing.
        fmt: "ml-100k", "ml-1m" (also ml-10m) or "ml-latest" (ml-latest-small, ml-25m, ml-32m).

    Returns:
        The folder.

    Raises:
        ValueError: If `fmt` is unknown, or a title holds the format's field separator.
    """
    if fmt not in get_args(GroupLensFormat):
        raise ValueError(f"Unknown GroupLens format {fmt!r}; expected one of {get_args(GroupLensFormat)}.")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    movies = dataset.movies
    titles = _title_with_year(movies)
    ratings = dataset.ratings[["user_id", "movie_id", "rating", "timestamp"]]
    genre_lists = (
        dataset.genres.groupby("movie_id", sort=False)["genre"].agg("|".join)
        if len(dataset.genres)
        else pd.Series(dtype="str")
    )
    joined_genres = movies["movie_id"].map(genre_lists).fillna(NO_GENRES).astype("str")

    if fmt == "ml-latest":
        _write_numbers(ratings, out / "ratings.csv", sep=",", header=",".join(_RATINGS_HEADER))
        pd.DataFrame({"movieId": movies["movie_id"], "title": titles, "genres": joined_genres}).to_csv(
            out / "movies.csv", index=False
        )
        if bool(movies["imdb_id"].notna().any() or movies["tmdb_id"].notna().any()):
            links = pd.DataFrame(
                {"movieId": movies["movie_id"], "imdbId": movies["imdb_id"], "tmdbId": movies["tmdb_id"]}
            )
            # IMDb ids are written zero-padded to 7 digits, as GroupLens does ("0114709").
            links["imdbId"] = _int_text(links["imdbId"]).str.zfill(7).where(links["imdbId"].notna(), "")
            links.to_csv(out / "links.csv", index=False)
        if len(dataset.tags):
            dataset.tags.rename(columns={"user_id": "userId", "movie_id": "movieId"}).to_csv(
                out / "tags.csv", index=False
            )
    elif fmt == "ml-1m":
        _refuse_separator(titles, "::", fmt)
        _write_dat(ratings, out / "ratings.dat")
        lines = movies["movie_id"].astype("str") + "::" + titles + "::" + joined_genres
        _write_lines(lines, out / "movies.dat", encoding="latin-1")
        if len(dataset.users):
            users = dataset.users
            codes = users["occupation"].map({name: code for code, name in enumerate(ML1M_OCCUPATIONS)})
            lines = (
                users["user_id"].astype("str")
                + "::"
                + users["gender"].fillna("")
                + "::"
                + _int_text(users["age"])
                + "::"
                + codes.fillna(0).astype("int64").astype("str")
                + "::"
                + users["zip_code"].fillna("")
            )
            _write_lines(lines, out / "users.dat", encoding="latin-1")
        if len(dataset.tags):
            tags = dataset.tags
            lines = (
                tags["user_id"].astype("str")
                + "::"
                + tags["movie_id"].astype("str")
                + "::"
                + tags["tag"]
                + "::"
                + tags["timestamp"].astype("str")
            )
            _write_lines(lines, out / "tags.dat", encoding="utf-8")
    else:
        _refuse_separator(titles, "|", fmt)
        names = list(ML100K_GENRES) + sorted(set(dataset.genres["genre"]) - set(ML100K_GENRES))
        position = {name: index for index, name in enumerate(names)}
        flags = np.zeros((len(movies), len(names)), dtype=np.int8)
        row_of = pd.Series(np.arange(len(movies)), index=movies["movie_id"].to_numpy())
        rows = dataset.genres["movie_id"].map(row_of)
        known = rows.notna()
        flags[rows[known].astype("int64"), dataset.genres["genre"][known].map(position).astype("int64")] = 1
        release = ("01-Jan-" + _int_text(movies["year"])).where(movies["year"].notna(), "")
        item = pd.DataFrame(
            {"movie_id": movies["movie_id"], "title": titles, "release": release, "video": "", "url": ""}
        )
        item = pd.concat([item, pd.DataFrame(flags, columns=[f"g{i}" for i in range(len(names))])], axis=1)
        item.to_csv(
            out / "u.item",
            sep="|",
            header=False,
            index=False,
            encoding="latin-1",
            errors="replace",
            quoting=csv.QUOTE_NONE,
        )
        genre_lines = pd.Series([f"{name}|{index}" for index, name in enumerate(names)], dtype="str")
        _write_lines(genre_lines, out / "u.genre", encoding="latin-1")
        _write_numbers(ratings, out / "u.data", sep="\t")
        if len(dataset.users):
            users = dataset.users
            pd.DataFrame(
                {
                    "user_id": users["user_id"],
                    "age": _int_text(users["age"]),
                    "gender": users["gender"].fillna(""),
                    "occupation": users["occupation"].fillna(""),
                    "zip_code": users["zip_code"].fillna(""),
                }
            ).to_csv(out / "u.user", sep="|", header=False, index=False, quoting=csv.QUOTE_NONE)
    return out


def _title_with_year(movies: pd.DataFrame) -> pd.Series:
    title = movies["title"].fillna("").astype("str")
    with_year = title + " (" + _int_text(movies["year"]) + ")"
    return with_year.where(movies["year"].notna(), title).astype("str")


def _int_text(values: pd.Series) -> pd.Series:
    """Integers as text, empty where missing."""
    return values.astype("Int64").astype("str").replace("<NA>", "").fillna("").astype("str")


def _refuse_separator(titles: pd.Series, sep: str, fmt: str) -> None:
    clash = titles.str.contains(sep, regex=False)
    if bool(clash.any()):
        raise ValueError(f"Title {titles[clash].iloc[0]!r} holds {sep!r}, which {fmt} uses as its separator.")


def _write_dat(ratings: pd.DataFrame, path: Path) -> None:
    # Empty columns between the values turn a one-character separator into "::".
    spaced = pd.DataFrame(
        {
            "user_id": ratings["user_id"],
            "_1": "",
            "movie_id": ratings["movie_id"],
            "_2": "",
            "rating": ratings["rating"],
            "_3": "",
            "timestamp": ratings["timestamp"],
        }
    )
    _write_numbers(spaced, path, sep=":")


def _write_numbers(frame: pd.DataFrame, path: Path, *, sep: str, header: str | None = None) -> None:
    """Write numeric columns, ratings as "4" or "3.5": pyarrow's writer if installed (about 5x faster)."""
    with path.open("wb") as handle:
        if header is not None:
            handle.write(f"{header}\n".encode())
        if pa_csv is None:
            frame.to_csv(
                handle, sep=sep, header=False, index=False, float_format="%g", quoting=csv.QUOTE_NONE
            )
            return
        options = pa_csv.WriteOptions(include_header=False, delimiter=sep, quoting_style="none")
        pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), handle, write_options=options)


def _write_lines(lines: pd.Series, path: Path, *, encoding: str) -> None:
    text = "\n".join(lines.tolist()) + "\n" if len(lines) else ""
    path.write_bytes(text.encode(encoding, errors="replace"))
