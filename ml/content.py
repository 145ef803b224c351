"""Content features of movies: TF-IDF over genres, title words, people and decade.

Each movie becomes a document of tokens namespaced by kind: `genre:Comedy`, `title:matrix`,
`director:m.0bln8`, `actor:m.0c3wmn`, `decade:1990`. Token values are TF-IDF; each kind's block is
scaled to the kind's weight (so 40 actors do not drown 3 genres), and rows are L2-normalised, so
the dot product of two rows is their cosine similarity.

Every movie of the catalogue gets a row, rated or not, so a movie added today can be recommended
from its content alone. People are Freebase ids with no names, so explanations refer to the
movie two films share a person with ("same director as Heat"), not to the person.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, Field

from ml.titles import fold

logger = logging.getLogger(__name__)

# Genres that say nothing: ML-100K's "unknown", MovieLens 20M+'s "(no genres listed)".
_NO_GENRE = frozenset({"unknown", "(no genres listed)"})
# fmt: off
_STOP_WORDS = frozenset({
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "being", "but", "by", "can", "did", "do", "does", "down", "for", "from", "had", "has",
    "have", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "just", "me", "more", "my", "no", "not", "of", "off", "on", "once", "one", "only", "or", "our",
    "out", "over", "own", "part", "she", "so", "some", "such", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "up", "very",
    "was", "we", "were", "what", "when", "where", "which", "who", "whom", "why", "will", "with",
    "you", "your",
    # Articles and particles of the foreign titles MovieLens carries.
    "al", "au", "aux", "d", "da", "das", "de", "degli", "dei", "del", "della", "dem", "den", "der",
    "des", "det", "di", "die", "du", "e", "een", "ein", "eine", "el", "en", "et", "gli", "het", "il",
    "l", "la", "las", "le", "les", "lo", "los", "o", "os", "s", "sur", "t", "un", "una", "und",
    "une", "y",
    # Sequel numbering, which would link "Die Hard 2" to "Toy Story 2".
    "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x",
})
# fmt: on
_TITLE_WORD = re.compile(r"[^\W\d_]{2,}")

TITLE_KIND = "title"
GENRE_KIND = "genre"
DECADE_KIND = "decade"

# Number words for "also stars two actors from Heat".
_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


class ContentConfig(BaseModel):
    """How movies are turned into content vectors; logged to MLflow as run params.

    A kind's weight is the length its block gets before the row is normalised (with
    `normalize_kinds`), so the share of two movies' similarity that comes from, say, shared
    actors grows with the square of `actor_weight`. A weight of 0 leaves the kind out. Rows are
    unit length, so a movie lacking a kind (no credits) spreads its length over the kinds it has:
    its genres then count for more in its similarities than a fully credited movie's do.
    """

    genre_weight: float = Field(default=1.0, ge=0)
    title_weight: float = Field(default=0.3, ge=0)
    decade_weight: float = Field(default=0.3, ge=0)
    director_weight: float = Field(default=1.0, ge=0)
    writer_weight: float = Field(default=0.7, ge=0)
    actor_weight: float = Field(default=1.0, ge=0)
    producer_weight: float = Field(default=0.5, ge=0)
    other_role_weight: float = Field(default=0.3, ge=0)
    """Any other credit role: cinematographer, composer, editor..."""
    min_df: int = Field(default=2, ge=1)
    """Drop tokens found in fewer movies: a token of one movie links it to nothing."""
    max_actors: int | None = Field(default=None, ge=1)
    """Keep at most this many actors per movie. Billing order is unknown, so the ones kept are
    those credited in the most movies of the catalogue; None keeps them all."""
    sublinear_tf: bool = True
    """Use 1 + log(tf) instead of the raw count (a word repeated in a title)."""
    normalize_kinds: bool = True
    """Scale each kind's block to unit length before weighting; if False the weights multiply
    the raw TF-IDF values, and the kinds with most tokens (actors) dominate."""

    def weight_of(self, kind: str) -> float:
        """Weight of a token kind (a credit role, "genre", "title" or "decade")."""
        named = {
            GENRE_KIND: self.genre_weight,
            TITLE_KIND: self.title_weight,
            DECADE_KIND: self.decade_weight,
            "director": self.director_weight,
            "writer": self.writer_weight,
            "actor": self.actor_weight,
            "producer": self.producer_weight,
        }
        return named.get(kind, self.other_role_weight)


@dataclass(frozen=True, eq=False)
class ItemFeatures:
    """Content vectors of a catalogue: one L2-normalised CSR row per movie.

    Attributes:
        movie_ids: Movie ids in row order, ascending.
        matrix: n_movies x n_tokens float32 CSR; a movie without any kept token has an empty row.
        vocabulary: Token of each column, "kind:value", sorted.
    """

    movie_ids: NDArray[np.int64]
    matrix: sp.csr_matrix
    vocabulary: list[str]
    _kinds: NDArray[np.str_] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.movie_ids), len(self.vocabulary)):
            raise ValueError(
                f"matrix shape {self.matrix.shape} does not match "
                f"{len(self.movie_ids)} movies x {len(self.vocabulary)} tokens"
            )
        if len(self.movie_ids) > 1 and not np.all(np.diff(self.movie_ids) > 0):
            raise ValueError("movie_ids must be unique and ascending")
        kinds = np.array([token.split(":", 1)[0] for token in self.vocabulary], dtype=np.str_)
        object.__setattr__(self, "_kinds", kinds)

    def __len__(self) -> int:
        return len(self.movie_ids)

    def __contains__(self, movie_id: object) -> bool:
        return isinstance(movie_id, int | np.integer) and self._find(int(movie_id)) >= 0

    def columns(self, movie_id: int) -> NDArray[np.int32]:
        """The feature columns a movie has: a view of its CSR row, without building a sub-matrix
        (indexing `matrix[row]` cost a hundred times more).

        Raises:
            KeyError: If the movie has no row.
        """
        row = self.row(movie_id)
        indptr = self.matrix.indptr
        columns: NDArray[np.int32] = self.matrix.indices[indptr[row] : indptr[row + 1]]
        return columns

    def row(self, movie_id: int) -> int:
        """Row of a movie in `matrix`.

        Args:
            movie_id: A movie id.

        Returns:
            Its row index.

        Raises:
            KeyError: If the movie has no row.
        """
        position = self._find(movie_id)
        if position < 0:
            raise KeyError(f"No content features for movie {movie_id}.")
        return position

    def rows(self, movie_ids: ArrayLike) -> NDArray[np.int64]:
        """Rows of several movies, -1 for those without features."""
        ids = np.asarray(movie_ids, dtype=np.int64)
        if len(self.movie_ids) == 0:
            return np.full(ids.shape, -1, dtype=np.int64)
        positions = np.minimum(np.searchsorted(self.movie_ids, ids), len(self.movie_ids) - 1)
        return np.where(self.movie_ids[positions] == ids, positions, -1).astype(np.int64)

    def kind_of(self, columns: ArrayLike) -> NDArray[np.str_]:
        """Kind ("genre", "actor", ...) of each of the given columns."""
        return self._kinds[np.asarray(columns, dtype=np.int64)]

    @cached_property
    def transposed(self) -> sp.csr_matrix:
        """`matrix.T` as CSR: the movies holding each token, for fast one-row products."""
        return self.matrix.T.tocsr()

    def to_arrays(self, prefix: str = "") -> dict[str, NDArray[Any]]:
        """Plain arrays for `np.savez` (no pickle needed to load them).

        Args:
            prefix: Prepended to every key, to share one `.npz` with other arrays.

        Returns:
            movie_ids, data, indices, indptr, shape and vocabulary arrays.
        """
        return {
            f"{prefix}movie_ids": self.movie_ids,
            f"{prefix}data": self.matrix.data,
            f"{prefix}indices": self.matrix.indices,
            f"{prefix}indptr": self.matrix.indptr,
            f"{prefix}shape": np.asarray(self.matrix.shape, dtype=np.int64),
            f"{prefix}vocabulary": np.asarray(self.vocabulary, dtype=np.str_),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, NDArray[Any]], prefix: str = "") -> ItemFeatures:
        """Rebuild features saved by `to_arrays`.

        Args:
            arrays: The arrays, e.g. an `np.load(path, allow_pickle=False)` result.
            prefix: The prefix given to `to_arrays`.

        Returns:
            Features equal to the saved ones.
        """
        shape = tuple(int(n) for n in arrays[f"{prefix}shape"])
        matrix = sp.csr_matrix(
            (
                np.asarray(arrays[f"{prefix}data"], dtype=np.float32),
                np.asarray(arrays[f"{prefix}indices"]),
                np.asarray(arrays[f"{prefix}indptr"]),
            ),
            shape=shape,
        )
        return cls(
            movie_ids=np.asarray(arrays[f"{prefix}movie_ids"], dtype=np.int64),
            matrix=matrix,
            vocabulary=[str(token) for token in arrays[f"{prefix}vocabulary"]],
        )

    def _find(self, movie_id: int) -> int:
        position = int(np.searchsorted(self.movie_ids, movie_id))
        if position < len(self.movie_ids) and self.movie_ids[position] == movie_id:
            return position
        return -1


def title_words(title: str) -> list[str]:
    """Content words of a title: folded, without stop words, numbers or a trailing year.

    Args:
        title: A title such as "Double vie de Véronique, La (Double Life of Veronique, The)".

    Returns:
        Its words in order, repeats kept: ["double", "vie", "veronique", "double", "life", "veronique"].
    """
    text = re.sub(r"\(\s*\d{4}\s*\)\s*$", "", fold(title))
    return [word for word in _TITLE_WORD.findall(text) if word not in _STOP_WORDS]


def build_item_features(
    movies: pd.DataFrame,
    genres: pd.DataFrame,
    credits: pd.DataFrame,
    config: ContentConfig | None = None,
) -> ItemFeatures:
    """TF-IDF content vectors for every movie of a catalogue.

    idf is the smoothed `ln((1 + n) / (1 + df)) + 1` over all n movies of `movies`; tf is the
    token's count in the movie (`1 + ln(count)` with `sublinear_tf`).

    Args:
        movies: Frame with movie_id, title and year (the `Dataset.movies` columns).
        genres: Frame with movie_id and genre.
        credits: Frame with movie_id, person_id and role.
        config: Weights and filters; the defaults if None.

    Returns:
        One row per movie of `movies`, sorted by movie id.

    Raises:
        ValueError: If `movies` repeats a movie id.
    """
    config = config or ContentConfig()
    started = time.perf_counter()
    if movies["movie_id"].duplicated().any():
        raise ValueError("movies has duplicate movie ids")
    catalogue = movies.sort_values("movie_id")
    movie_ids = catalogue["movie_id"].to_numpy(dtype=np.int64)

    tokens = _tokens(catalogue, genres, credits, config)
    tokens = tokens[tokens["movie_id"].isin(movie_ids)]
    counts = (
        tokens.groupby(["movie_id", "token", "kind"], sort=False, observed=True)
        .size()
        .rename("count")
        .reset_index()
    )
    df = counts.groupby("token", sort=False)["movie_id"].transform("size")
    counts = counts[df >= config.min_df].reset_index(drop=True)

    codes, uniques = pd.factorize(counts["token"])
    order = np.argsort(np.asarray(uniques, dtype=str))
    vocabulary = np.asarray(uniques, dtype=str)[order]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    columns = rank[codes]
    rows = np.searchsorted(movie_ids, counts["movie_id"].to_numpy(dtype=np.int64))
    df_of_column = np.bincount(columns, minlength=len(vocabulary))
    idf = np.log((1 + len(movie_ids)) / (1 + df_of_column)) + 1
    tf = counts["count"].to_numpy(dtype=np.float64)
    if config.sublinear_tf:
        tf = 1 + np.log(tf)
    values = tf * idf[columns]

    weights = _weights(counts["kind"], config)
    if config.normalize_kinds:
        block = pd.Series(values**2).groupby([rows, counts["kind"].to_numpy()]).transform("sum")
        values = values / np.sqrt(block.to_numpy())
    values = values * weights

    matrix = sp.csr_matrix(
        (values.astype(np.float32), (rows, columns)),
        shape=(len(movie_ids), len(vocabulary)),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    _normalize_rows(matrix)
    features = ItemFeatures(movie_ids=movie_ids, matrix=matrix, vocabulary=[str(t) for t in vocabulary])
    logger.info(
        "content features: %d movies x %d tokens, %d non-zeros, %d movies without tokens, %.2fs",
        matrix.shape[0],
        matrix.shape[1],
        matrix.nnz,
        int(np.sum(np.diff(matrix.indptr) == 0)),
        time.perf_counter() - started,
    )
    return features


def similar_items(
    features: ItemFeatures,
    movie_id: int,
    k: int,
    *,
    exclude: Iterable[int] = (),
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Movies most similar to one movie by cosine similarity of content.

    Args:
        features: Content features.
        movie_id: The movie to find neighbours of; never in the result.
        k: At most this many neighbours.
        exclude: Movie ids to leave out (e.g. those the user has rated).

    Returns:
        Neighbour ids and their similarities (0-1], best first. Movies sharing no token
        (similarity 0) are not returned, so there may be fewer than k.

    Raises:
        KeyError: If the movie has no features.
    """
    row = features.row(movie_id)
    scores = np.asarray((features.matrix[row] @ features.transposed).todense()).ravel()
    scores[row] = 0.0
    excluded = features.rows(list(exclude))
    scores[excluded[excluded >= 0]] = 0.0
    return _top_k(features.movie_ids, scores, k)


def top_neighbours(
    features: ItemFeatures,
    k: int,
    *,
    chunk_size: int | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The k most similar movies of every movie, computed a block of rows at a time.

    Args:
        features: Content features.
        k: Neighbours per movie.
        chunk_size: Rows per block; by default as many as keep a dense block of similarities
            near 100 MB at its peak (about 65 rows for 60,000 movies).

    Returns:
        `(neighbour_ids, scores)`, both n_movies x k and aligned with `features.movie_ids`,
        best first. Where a movie has fewer than k neighbours with a positive similarity, the
        rest of its row is id -1 with score 0.
    """
    n_items = len(features)
    k = min(k, max(n_items - 1, 0))
    neighbour_ids = np.full((n_items, k), -1, dtype=np.int64)
    neighbour_scores = np.zeros((n_items, k), dtype=np.float32)
    if k == 0:
        return neighbour_ids, neighbour_scores
    # A block of 4M similarities costs about 100 MB at its peak (the sparse product, its dense
    # copy and argpartition's int64 indices), whatever the catalogue size.
    chunk_size = chunk_size or max(1, 4_000_000 // n_items)
    started = time.perf_counter()
    for start in range(0, n_items, chunk_size):
        stop = min(start + chunk_size, n_items)
        block = (features.matrix[start:stop] @ features.transposed).toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = np.argpartition(block, -k, axis=1)[:, -k:]
        top_scores = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        positive = top_scores > 0
        neighbour_ids[start:stop] = np.where(positive, features.movie_ids[top], -1)
        neighbour_scores[start:stop] = np.where(positive, top_scores, 0.0)
    logger.info("content neighbours: %d movies x %d, %.2fs", n_items, k, time.perf_counter() - started)
    return neighbour_ids, neighbour_scores


def user_profile(
    features: ItemFeatures,
    movie_ids: Sequence[int] | NDArray[np.int64],
    weights: Sequence[float] | NDArray[np.floating] | None = None,
) -> sp.csr_matrix:
    """A user's taste as the weighted mean of the vectors of movies they rated.

    Args:
        features: Content features.
        movie_ids: Movies the user rated; those without features are skipped.
        weights: One per movie, e.g. rating minus the user's mean rating, so disliked movies
            push away; all 1 if None. The mean divides by the sum of absolute weights.

    Returns:
        A 1 x n_tokens float32 CSR row; all zeros if no movie has features or all weights are 0.

    Raises:
        ValueError: If `weights` and `movie_ids` differ in length.
    """
    rows = features.rows(movie_ids)
    values = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(values) != len(rows):
        raise ValueError(f"{len(rows)} movies but {len(values)} weights")
    known = rows >= 0
    rows, values = rows[known], values[known]
    total = float(np.abs(values).sum())
    if total == 0:
        return sp.csr_matrix((1, features.matrix.shape[1]), dtype=np.float32)
    combined = sp.csr_matrix(values / total) @ features.matrix[rows]
    return sp.csr_matrix(combined, dtype=np.float32)


def score_profile(features: ItemFeatures, profile: sp.csr_matrix) -> NDArray[np.float32]:
    """Cosine similarity of every movie to a user profile.

    Args:
        features: Content features.
        profile: A row from `user_profile`.

    Returns:
        One score per movie in `features.movie_ids` order, in [-1, 1]; all NaN if the profile
        is empty (the user cannot be scored from content, as for an unknown user).
    """
    norm = math.sqrt(float(profile.multiply(profile).sum()))
    if norm == 0:
        return np.full(len(features), np.nan, dtype=np.float32)
    scores = (features.matrix @ profile.T).toarray().ravel() / norm
    return scores.astype(np.float32)


def shared_reasons(
    features: ItemFeatures,
    movie_a: int,
    movie_b: int,
    *,
    titles: Mapping[int, str],
) -> list[str]:
    """Why two movies are alike, in words, naming the second one.

    Only what the vectors share counts: a kind with weight 0, or a person credited in a single
    movie of the catalogue, is never a reason.

    Args:
        features: Content features.
        movie_a: The movie being explained (e.g. a recommendation).
        movie_b: The movie it is compared with (e.g. one the user liked).
        titles: Display titles by movie id; `movie_b`'s is used in the sentences.

    Returns:
        Reasons, people first, then title words, genres and decade, e.g.
        ["same director as Heat", "also stars two actors from Heat", "both Crime and Thriller"].
        Empty if the movies share nothing.

    Raises:
        KeyError: If either movie has no features.
    """
    shared = np.intersect1d(features.columns(movie_a), features.columns(movie_b), assume_unique=True)
    if len(shared) == 0:
        return []
    name = titles.get(movie_b, "that movie")
    by_kind: dict[str, list[str]] = {}
    for column in shared:
        kind, _, value = features.vocabulary[column].partition(":")
        by_kind.setdefault(kind, []).append(value)

    reasons: list[str] = []
    people = [kind for kind in by_kind if kind not in (GENRE_KIND, TITLE_KIND, DECADE_KIND)]
    for kind in sorted(people, key=_role_order):
        count = len(by_kind[kind])
        if kind == "actor":
            reasons.append(
                f"also stars an actor from {name}"
                if count == 1
                else f"also stars {_count_word(count)} actors from {name}"
            )
        else:
            reasons.append(f"same {kind}{'s' if count > 1 else ''} as {name}")
    if TITLE_KIND in by_kind:
        words = by_kind[TITLE_KIND]
        quoted = " and ".join(f'"{word}"' for word in words)
        reasons.append(f"both titles have {quoted}")
    if GENRE_KIND in by_kind:
        reasons.append(f"both {_join(sorted(by_kind[GENRE_KIND]))}")
    if DECADE_KIND in by_kind:
        reasons.append(f"both from the {by_kind[DECADE_KIND][0]}s")
    return reasons


def _tokens(
    movies: pd.DataFrame, genres: pd.DataFrame, credits: pd.DataFrame, config: ContentConfig
) -> pd.DataFrame:
    """Long frame of (movie_id, token, kind), one row per occurrence, kinds with weight > 0."""
    parts: list[pd.DataFrame] = []
    if config.genre_weight > 0 and len(genres):
        kept = genres[~genres["genre"].astype(str).str.strip().str.lower().isin(_NO_GENRE)]
        parts.append(_frame(kept["movie_id"], GENRE_KIND, kept["genre"].astype(str).str.strip()))
    if config.title_weight > 0:
        words = movies["title"].fillna("").astype(str).map(title_words).explode().dropna()
        parts.append(_frame(movies["movie_id"].loc[words.index], TITLE_KIND, words))
    if config.decade_weight > 0:
        years = pd.to_numeric(movies["year"], errors="coerce")
        known = years.notna()
        decades = (years[known].astype("int64") // 10 * 10).astype(str)
        parts.append(_frame(movies.loc[known, "movie_id"], DECADE_KIND, decades))
    if len(credits):
        roles = credits["role"].astype(str).str.strip().str.lower().str.replace(":", "_")
        kept = credits.assign(role=roles)[_weights(roles, config) > 0]
        if config.max_actors is not None:
            kept = _cap_actors(kept, config.max_actors)
        for role, group in kept.groupby("role", sort=True):
            parts.append(_frame(group["movie_id"], str(role), group["person_id"].astype(str)))
    if not parts:
        return pd.DataFrame({"movie_id": pd.Series(dtype="int64"), "token": [], "kind": []})
    return pd.concat(parts, ignore_index=True)


def _weights(kinds: pd.Series, config: ContentConfig) -> NDArray[np.float64]:
    """`config.weight_of` of each kind, looked up once per distinct kind."""
    lookup = {kind: config.weight_of(str(kind)) for kind in kinds.unique()}
    return kinds.map(lookup).to_numpy(dtype=np.float64)


def _frame(movie_ids: ArrayLike, kind: str, values: pd.Series | pd.Index) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "movie_id": np.asarray(movie_ids, dtype=np.int64),
            "token": (kind + ":" + pd.Series(np.asarray(values, dtype=str))).to_numpy(dtype=object),
            "kind": kind,
        }
    )


def _cap_actors(credits: pd.DataFrame, max_actors: int) -> pd.DataFrame:
    """Keep each movie's `max_actors` actors credited in the most movies; others untouched."""
    actors = credits[credits["role"] == "actor"].drop_duplicates(["movie_id", "person_id"])
    films = actors.groupby("person_id")["movie_id"].transform("size")
    ranked = actors.assign(_films=films).sort_values(
        ["movie_id", "_films"], ascending=[True, False], kind="stable"
    )
    kept = ranked.groupby("movie_id").head(max_actors).drop(columns="_films")
    return pd.concat([credits[credits["role"] != "actor"], kept], ignore_index=True)


def _normalize_rows(matrix: sp.csr_matrix) -> None:
    """L2-normalise a CSR matrix's rows in place; empty rows stay empty."""
    squares = matrix.multiply(matrix).sum(axis=1)
    norms = np.sqrt(np.asarray(squares, dtype=np.float64).ravel())
    norms[norms == 0] = 1.0
    matrix.data /= np.repeat(norms, np.diff(matrix.indptr)).astype(np.float32)


def _top_k(
    movie_ids: NDArray[np.int64], scores: NDArray[np.floating], k: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    candidates = np.flatnonzero(scores > 0)
    if k < len(candidates):
        candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
    order = np.argsort(-scores[candidates], kind="stable")
    best = candidates[order]
    return movie_ids[best], scores[best].astype(np.float32)


def _role_order(kind: str) -> tuple[int, str]:
    order = ("director", "writer", "actor", "producer")
    return (order.index(kind) if kind in order else len(order), kind)


def _count_word(count: int) -> str:
    return _COUNT_WORDS[count] if count < len(_COUNT_WORDS) else str(count)


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
