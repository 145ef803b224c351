"""The real MovieLens 100K, read from the copy that ships inside the `recbole` wheel.

The wheel holds the GroupLens files converted to RecBole's "atomic" format: tab-separated, one
typed header line (`name:type`), plus Freebase links and triples that give us people credits.
We only read the files; importing `recbole` would pull in PyTorch.
"""

from __future__ import annotations

import csv
import importlib.metadata
from pathlib import Path

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


def load_builtin(name: str = "ml-100k") -> Dataset:
    """Load a dataset bundled with an installed package.

    Args:
        name: The dataset name; only "ml-100k" is available.

    Returns:
        MovieLens 100K: 100,000 ratings by 943 users of 1,682 movies, with user demographics,
        19 genres and Freebase people credits (ids only, names unknown).

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
