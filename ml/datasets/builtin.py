"""The real MovieLens 100K, read from the copy that ships inside the `recbole` wheel.

The wheel holds the GroupLens files converted to RecBole's "atomic" format: tab-separated, one
typed header line (`name:type`), plus Freebase links and triples. We only read the files; importing
`recbole` would pull in PyTorch.

The bundled `ml-100k.link` is keyed by MovieLens **1M** movie ids, not by ML-100K ids: its Freebase
`film.film.sequel` edges read Star Wars -> Empire -> Jedi and Godfather -> Part II only under ML-1M
numbering (under ML-100K numbering they read "Event Horizon -> Savage Nights"), and Empire and Jedi
share 13 actors under ML-1M ids but none under ML-100K ids. Joining it on ML-100K ids would credit
every movie with another film's cast. So people are attached only when the ML-1M `movies.dat` is
given, which lets us translate ML-1M ids to ML-100K ids by title and year (`ml1m_movies=`).
"""

from __future__ import annotations

import csv
import importlib.metadata
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ml.datasets.base import DataFormatError, Dataset
from ml.datasets.grouplens import empty_table, split_title

BUILTIN_NAMES = ("ml-100k",)
INSTALL_HINT = "pip install --no-deps recbole==1.2.1"

# Film-headed Freebase relations whose tail is a person, and the credit role they give.
FILM_TO_PERSON = {
    "film.film.actor": "actor",
    "film.film.directed_by": "director",
    "film.film.written_by": "writer",
    "film.film.produced_by": "producer",
    "film.film.cinematography": "cinematographer",
}
# The reverse relations: the head is the person, the tail the film. Most mirror a forward
# triple; a few (`film.actor.film`) only exist this way round. Genre, company, rating and
# subject relations are left out: their heads and tails are not people.
PERSON_TO_FILM = {
    "film.actor.film": "actor",
    "film.director.film": "director",
    "film.writer.film": "writer",
    "film.producer.film": "producer",
    "film.cinematographer.film": "cinematographer",
}
ROLE_ORDER = ("director", "writer", "producer", "cinematographer", "actor")


def load_builtin(name: str = "ml-100k", *, ml1m_movies: Path | str | None = None) -> Dataset:
    """Load a dataset bundled with an installed package.

    Args:
        name: The dataset name; only "ml-100k" is available.
        ml1m_movies: MovieLens 1M's `movies.dat` (or a folder or zip holding it). With it, the
            bundled Freebase links (keyed by ML-1M ids) are translated to ML-100K ids by title and
            year, and movies get their Freebase ids and people credits. Without it, no credits.

    Returns:
        MovieLens 100K: 100,000 ratings by 943 users of 1,682 movies, with user demographics,
        19 genres and, given `ml1m_movies`, Freebase people credits (ids only, names unknown).

    Raises:
        ValueError: If `name` is not a bundled dataset.
        FileNotFoundError: If `recbole` is not installed or its files are missing.
        DataFormatError: If a bundled file does not have the expected columns.
    """
    if name not in BUILTIN_NAMES:
        raise ValueError(f"Unknown built-in dataset {name!r}; available: {', '.join(BUILTIN_NAMES)}.")
    folder = _locate_folder(name)

    inter = _read_atomic(folder / f"{name}.inter")
    ratings = pd.DataFrame(
        {
            "user_id": inter["user_id"].astype("int64"),
            "movie_id": inter["item_id"].astype("int64"),
            "rating": inter["rating"].astype("float32"),
            "timestamp": inter["timestamp"].astype("float64").astype("int64"),
        }
    )

    item = _read_atomic(folder / f"{name}.item")
    link = _read_atomic(folder / f"{name}.link")
    if ml1m_movies is None:
        link = link.iloc[0:0]
    else:
        link = translate_ml1m_link(link, item, _ml1m_movies(Path(ml1m_movies)))
    movies, genres = _movies_and_genres(item, link)

    user = _read_atomic(folder / f"{name}.user")
    users = pd.DataFrame(
        {
            "user_id": user["user_id"].astype("int64"),
            "age": pd.to_numeric(user["age"], errors="coerce").astype("Int64"),
            "gender": user["gender"].astype("str"),
            "occupation": user["occupation"].astype("str"),
            "zip_code": user["zip_code"].astype("str"),
        }
    )

    kg = _read_atomic(folder / f"{name}.kg")
    credits = _credits(kg, link)
    people = pd.DataFrame(
        {
            "person_id": pd.Series(np.sort(credits["person_id"].unique()), dtype="str"),
            "name": pd.Series(pd.NA, index=range(credits["person_id"].nunique()), dtype="str"),
        }
    )
    return Dataset(
        name=name,
        ratings=ratings,
        movies=movies,
        users=users,
        genres=genres,
        people=people,
        credits=credits,
        tags=empty_table("tags"),
    )


def _ml1m_movies(path: Path) -> pd.DataFrame:
    """MovieLens 1M movies (`movie_id`, `title`, `year`) from `movies.dat`, or a folder or zip holding it.

    Raises:
        FileNotFoundError: no `movies.dat` there.
        DataFormatError: a line is not `id::Title (year)::genres`.
    """
    raw: bytes | None = None
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if PurePosixPath(n).name == "movies.dat"]
            if names:
                raw = archive.read(min(names, key=len))
    elif path.is_dir():
        found = sorted(path.glob("movies.dat")) + sorted(path.glob("*/movies.dat"))
        if found:
            raw = found[0].read_bytes()
    elif path.is_file():
        raw = path.read_bytes()
    if raw is None:
        raise FileNotFoundError(f"no MovieLens 1M movies.dat at {path}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("::")
        if len(fields) != 3 or not fields[0].isdigit():
            raise DataFormatError("movies.dat", number, "expected 'id::Title (year)::Genre|Genre'")
        rows.append((int(fields[0]), fields[1]))
    frame = pd.DataFrame(rows, columns=["movie_id", "raw_title"])
    title, year = split_title(frame["raw_title"])
    return pd.DataFrame({"movie_id": frame["movie_id"], "title": title, "year": year})


def translate_ml1m_link(link: pd.DataFrame, item: pd.DataFrame, ml1m: pd.DataFrame) -> pd.DataFrame:
    """Re-key the bundled Freebase links from ML-1M movie ids to ML-100K ids.

    A ML-1M movie maps to the ML-100K movie of the same year (within one) whose normalised title
    is the closest, when the match is strong (token-set ratio >= 90) and unambiguous. Titles differ
    between the releases ("Star Wars: Episode V - The Empire Strikes Back" / "Empire Strikes Back,
    The"), so an exact join would lose most movies.

    Args:
        link: `item_id` (ML-1M ids) and `entity_id` columns, as bundled.
        item: the ML-100K `.item` table (`item_id`, `movie_title`, `release_year`).
        ml1m: ML-1M movies with `movie_id`, `title`, `year`.

    Returns:
        The links with `item_id` holding ML-100K ids; unmatched links are dropped.
    """
    from rapidfuzz import fuzz

    from ml.titles import normalize_title

    hundred_k = pd.DataFrame(
        {
            "item_id": item["item_id"],
            "key": item["movie_title"].map(normalize_title),
            "year": pd.to_numeric(item["release_year"], errors="coerce"),
        }
    )
    by_year: dict[int, list[tuple[str, str]]] = {}
    for item_id, key, year in hundred_k.itertuples(index=False):
        if pd.notna(year):
            by_year.setdefault(int(year), []).append((key, item_id))
    one_m = {
        int(movie_id): (normalize_title(str(title)), int(year))
        for movie_id, title, year in ml1m[["movie_id", "title", "year"]].itertuples(index=False)
        if pd.notna(year)
    }
    translated: dict[str, str] = {}
    for ml1m_id in link["item_id"].astype("int64").unique():
        if int(ml1m_id) not in one_m:
            continue
        key, year = one_m[int(ml1m_id)]
        candidates = [c for y in (year - 1, year, year + 1) for c in by_year.get(y, [])]
        scored = sorted(
            ((fuzz.token_set_ratio(key, other), other_id) for other, other_id in candidates), reverse=True
        )
        if scored and scored[0][0] >= 90 and (len(scored) == 1 or scored[1][0] < scored[0][0]):
            translated[str(ml1m_id)] = scored[0][1]
    out = link[link["item_id"].isin(translated)]
    return out.assign(item_id=out["item_id"].map(translated)).drop_duplicates("item_id")


def _locate_folder(name: str) -> Path:
    try:
        dist = importlib.metadata.distribution("recbole")
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"The built-in dataset {name!r} is read from the recbole wheel, which is not installed. "
            f"Install it without its dependencies: {INSTALL_HINT}"
        ) from exc
    folder = Path(str(dist.locate_file(f"recbole/dataset_example/{name}")))
    if not (folder / f"{name}.inter").is_file():
        raise FileNotFoundError(
            f"recbole is installed but {folder / (name + '.inter')} is missing; reinstall it: {INSTALL_HINT}"
        )
    return folder


def _read_atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file as strings, with the `:type` suffixes dropped from the header."""
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype="str",
        keep_default_na=False,
        quoting=csv.QUOTE_NONE,
        encoding="utf-8",
        engine="c",
    )
    frame.columns = [str(column).split(":", 1)[0] for column in frame.columns]
    return frame


def _movies_and_genres(item: pd.DataFrame, link: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    missing = {"item_id", "movie_title", "release_year", "class"} - set(item.columns)
    if missing:
        raise DataFormatError("ml-100k.item", 1, f"missing columns {sorted(missing)}")
    # RecBole misspells the one untitled movie (GroupLens id 267) as "unkonwn".
    title = item["movie_title"].replace("unkonwn", "unknown")
    year = pd.to_numeric(item["release_year"].where(item["release_year"].str.fullmatch(r"\d{4}")))
    # A few source titles carried a suffix after the year ("... (1995) (V)"); RecBole then took the
    # suffix as the year and left the year in the title.
    bare_title, title_year = split_title(title)
    from_title = year.isna() & title_year.notna()
    title = title.where(~from_title, bare_title)
    year = year.where(~from_title, title_year)

    freebase = link.drop_duplicates("item_id").set_index("item_id")["entity_id"]
    movies = pd.DataFrame(
        {
            "movie_id": item["item_id"].astype("int64"),
            "title": title.astype("str"),
            "year": year.astype("Int64"),
            "imdb_id": pd.Series(pd.NA, index=item.index, dtype="Int64"),
            "tmdb_id": pd.Series(pd.NA, index=item.index, dtype="Int64"),
            "freebase_id": item["item_id"].map(freebase).astype("str"),
        }
    )

    # `class` holds the 19 u.genre names separated by spaces; none contains a space ("Children's",
    # "Film-Noir", "Sci-Fi"), so splitting on spaces is exact.
    tokens = item.assign(genre=item["class"].str.split(" ")).explode("genre")
    tokens = tokens[tokens["genre"].notna() & (tokens["genre"] != "")]
    genres = pd.DataFrame(
        {
            "movie_id": tokens["item_id"].astype("int64").to_numpy(),
            "genre": pd.Series(tokens["genre"].to_numpy(), dtype="str"),
        }
    ).drop_duplicates(ignore_index=True)
    return movies, genres


def _credits(kg: pd.DataFrame, link: pd.DataFrame) -> pd.DataFrame:
    forward = kg[kg["relation_id"].isin(FILM_TO_PERSON)]
    reverse = kg[kg["relation_id"].isin(PERSON_TO_FILM)]
    triples = pd.concat(
        [
            pd.DataFrame(
                {
                    "entity_id": forward["head_id"],
                    "person_id": forward["tail_id"],
                    "role": forward["relation_id"].map(FILM_TO_PERSON),
                }
            ),
            pd.DataFrame(
                {
                    "entity_id": reverse["tail_id"],
                    "person_id": reverse["head_id"],
                    "role": reverse["relation_id"].map(PERSON_TO_FILM),
                }
            ),
        ],
        ignore_index=True,
    )
    # Only films linked to a MovieLens item; one Freebase film may back several items.
    linked = triples.merge(link[["item_id", "entity_id"]], on="entity_id", how="inner")
    credits = pd.DataFrame(
        {
            "movie_id": linked["item_id"].astype("int64"),
            "person_id": linked["person_id"].astype("str"),
            "role": linked["role"].astype("str"),
        }
    ).drop_duplicates()
    order = credits["role"].map({role: rank for rank, role in enumerate(ROLE_ORDER)})
    credits = credits.assign(_order=order).sort_values(["movie_id", "_order", "person_id"], kind="stable")
    return credits.drop(columns="_order").reset_index(drop=True)
