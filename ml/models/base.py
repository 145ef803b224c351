"""The recommender interface every model implements, and the helpers they share.

A recommender is fitted on a ratings frame (`user_id`, `movie_id`, `rating`, `timestamp`, as in
`ml.datasets.base.Dataset`) and, when it needs them, on the catalog frames. Afterwards it answers
four questions about external ids: `score`, `recommend`, `similar` and `predict_rating`. A user or
a movie the model has not seen gives NaN, never a made-up default, so callers can route unknown
users to the cold-start path.

Every model saves itself as a directory holding `model.json` (name, format version, config,
scalars) and `arrays.npz` (numpy arrays only; no pickle), and loads back with identical scores.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

MODEL_FORMAT_VERSION = 1
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"

FloatArray = NDArray[np.float64]
IdArray = NDArray[np.int64]
IndexArray = NDArray[np.intp]


class ModelError(Exception):
    """Base class of the errors raised by `ml.models`."""


class NotFittedError(ModelError):
    """A model was used before `fit` (or `load`)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The {name} model is not fitted; call fit() or load() first.")


class ModelFormatError(ModelError):
    """A saved model or artifact is missing, of another model, or of an unsupported format."""


class ModelConfig(BaseModel):
    """Base of every model configuration: immutable, no unknown fields, logged as MLflow params."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})


@dataclass(frozen=True)
class Catalog:
    """The catalog frames a model may need besides ratings (shapes as in `Dataset`)."""

    movies: pd.DataFrame
    genres: pd.DataFrame = field(default_factory=lambda: _empty_frame(("movie_id", "genre")))
    credits: pd.DataFrame = field(default_factory=lambda: _empty_frame(("movie_id", "person_id", "role")))
    people: pd.DataFrame = field(default_factory=lambda: _empty_frame(("person_id", "name")))

    @classmethod
    def from_dataset(cls, dataset: Any) -> Catalog:
        """The catalog part of an `ml.datasets.Dataset`.

        Args:
            dataset: Any object with `movies`, `genres`, `credits` and `people` frames.

        Returns:
            A catalog sharing the dataset's frames (not copied).
        """
        return cls(
            movies=dataset.movies, genres=dataset.genres, credits=dataset.credits, people=dataset.people
        )

    @property
    def movie_ids(self) -> IdArray:
        """Every catalog movie id, sorted."""
        return np.unique(self.movies["movie_id"].to_numpy(dtype=np.int64))


class Recommendations(NamedTuple):
    """A ranked list: movie ids, best first, and their scores (higher is better)."""

    movie_ids: IdArray
    scores: FloatArray

    def __len__(self) -> int:
        return len(self.movie_ids)

    @classmethod
    def empty(cls) -> Recommendations:
        """A list with no movies."""
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


class IdIndex:
    """A sorted set of external ids and their dense positions 0..n-1."""

    def __init__(self, ids: ArrayLike) -> None:
        self.ids: IdArray = np.unique(np.asarray(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: object) -> bool:
        return isinstance(external_id, int | np.integer) and self.index(int(external_id)) >= 0

    def index(self, external_id: int) -> int:
        """Position of one id, or -1 if unknown."""
        pos = int(np.searchsorted(self.ids, external_id))
        return pos if pos < len(self.ids) and self.ids[pos] == external_id else -1

    def indices(self, external_ids: ArrayLike) -> IndexArray:
        """Positions of many ids, -1 where unknown."""
        values = np.asarray(external_ids, dtype=np.int64).ravel()
        if len(self.ids) == 0:
            return np.full(len(values), -1, dtype=np.intp)
        pos = np.searchsorted(self.ids, values).astype(np.intp)
        clipped = np.minimum(pos, len(self.ids) - 1)
        return np.where(self.ids[clipped] == values, clipped, -1).astype(np.intp)


@dataclass
class Interactions:
    """Ratings as a users x items CSR matrix over fixed id indexes."""

    users: IdIndex
    items: IdIndex
    matrix: sp.csr_matrix  # float32 ratings; a stored 0 never occurs (ratings are >= 0.5)

    @classmethod
    def from_frame(cls, ratings: pd.DataFrame, item_ids: ArrayLike | None = None) -> Interactions:
        """Index a ratings frame.

        Args:
            ratings: Frame with `user_id`, `movie_id`, `rating`; duplicates keep the last rating.
            item_ids: Extra movie ids to include as items without ratings (catalog movies).

        Returns:
            The interactions, items being the union of rated movies and `item_ids`.
        """
        user_col = ratings["user_id"].to_numpy(dtype=np.int64)
        item_col = ratings["movie_id"].to_numpy(dtype=np.int64)
        values = ratings["rating"].to_numpy(dtype=np.float32)
        users = IdIndex(user_col)
        all_items = item_col if item_ids is None else np.concatenate([item_col, np.asarray(item_ids)])
        items = IdIndex(all_items)
        rows, cols = users.indices(user_col), items.indices(item_col)
        # Keep the last rating of a duplicated (user, movie) pair rather than summing them.
        keys = rows.astype(np.int64) * max(len(items), 1) + cols
        _, last = np.unique(keys[::-1], return_index=True)
        keep = len(keys) - 1 - last
        matrix = sp.csr_matrix(
            (values[keep], (rows[keep], cols[keep])), shape=(len(users), len(items)), dtype=np.float32
        )
        matrix.sort_indices()
        return cls(users, items, matrix)

    def binary(self) -> sp.csr_matrix:
        """The same pattern with every stored value set to 1."""
        out = self.matrix.copy()
        out.data = np.ones_like(out.data)
        return out

    def history(self, user_index: int) -> tuple[IndexArray, NDArray[np.float32]]:
        """Item positions and ratings of one user (empty for -1)."""
        if user_index < 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        start, end = self.matrix.indptr[user_index], self.matrix.indptr[user_index + 1]
        return self.matrix.indices[start:end].astype(np.intp), self.matrix.data[start:end]

    def item_counts(self) -> NDArray[np.int64]:
        """Number of ratings of each item."""
        return np.bincount(self.matrix.indices, minlength=len(self.items)).astype(np.int64)

    def to_arrays(self, prefix: str = "") -> dict[str, NDArray[Any]]:
        """The arrays `from_arrays` needs, keys prefixed."""
        return {
            f"{prefix}user_ids": self.users.ids,
            f"{prefix}item_ids": self.items.ids,
            f"{prefix}hist_indptr": self.matrix.indptr.astype(np.int64),
            f"{prefix}hist_indices": self.matrix.indices.astype(np.int32),
            f"{prefix}hist_ratings": self.matrix.data.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, NDArray[Any]], prefix: str = "") -> Interactions:
        """Rebuild interactions saved by `to_arrays`."""
        users = IdIndex(arrays[f"{prefix}user_ids"])
        items = IdIndex(arrays[f"{prefix}item_ids"])
        matrix = sp.csr_matrix(
            (
                arrays[f"{prefix}hist_ratings"].astype(np.float32),
                arrays[f"{prefix}hist_indices"],
                arrays[f"{prefix}hist_indptr"],
            ),
            shape=(len(users), len(items)),
        )
        return cls(users, items, matrix)


def top_k_indices(scores: NDArray[np.floating[Any]], k: int, *, in_place: bool = False) -> IndexArray:
    """Positions of the `k` highest scores, best first; NaN and -inf never selected.

    Args:
        scores: One score per position.
        k: How many to return (fewer if fewer are finite).
        in_place: The scores may be overwritten (negated; saves a copy on large catalogs).

    Returns:
        Positions, sorted by decreasing score (ties by increasing position).
    """
    n = len(scores)
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.intp)
    negated = np.negative(scores, out=scores if in_place else None)
    negated[np.isnan(negated)] = np.inf
    # Partitioning at k - 1 of the negated scores stays fast when most scores are equal (sparse
    # item-item scores are mostly 0); partitioning at n - k of the scores does not.
    part = np.argpartition(negated, k - 1)[:k] if k < n else np.arange(n)
    order = part[np.lexsort((part, negated[part]))]
    return order[np.isfinite(negated[order])].astype(np.intp)


def rows_by_user(frame: pd.DataFrame) -> Iterator[tuple[int, IndexArray]]:
    """The row positions of each user in a ratings frame, users in increasing id order."""
    users = frame["user_id"].to_numpy(dtype=np.int64)
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    if len(users) == 0:
        return
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    bounds = [*starts.tolist(), len(users)]
    for begin, end in itertools.pairwise(bounds):
        yield int(sorted_users[begin]), order[begin:end].astype(np.intp)


def zscore(values: NDArray[np.floating[Any]]) -> FloatArray:
    """Standardise scores (NaN ignored and kept); a constant input gives zeros."""
    out = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(out)
    if not finite.any():
        return np.zeros_like(out)
    mean = out[finite].mean()
    std = out[finite].std()
    return (out - mean) / std if std > 1e-12 else np.where(finite, 0.0, np.nan)


def save_bundle(path: Path, meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
    """Write `model.json` and `arrays.npz` into a directory (created if needed)."""
    path.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        if value.dtype == object:
            raise ModelFormatError(f"array {key!r} has dtype object; it would need pickle")
    np.savez(path / ARRAYS_FILE, allow_pickle=False, **arrays)
    (path / MODEL_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))


def load_bundle(path: Path) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Read a directory written by `save_bundle`.

    Raises:
        ModelFormatError: If a file is missing.
    """
    meta_file, arrays_file = path / MODEL_FILE, path / ARRAYS_FILE
    if not meta_file.is_file() or not arrays_file.is_file():
        raise ModelFormatError(f"{path} does not hold a saved model ({MODEL_FILE} + {ARRAYS_FILE})")
    meta = json.loads(meta_file.read_text())
    with np.load(arrays_file, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return meta, arrays


@contextmanager
def stopwatch(message: str, *args: object, log: logging.Logger = logger) -> Iterator[None]:
    """Log `message % args` with the elapsed time when the block ends."""
    start = time.perf_counter()
    yield
    log.info(message + " in %.2fs", *args, time.perf_counter() - start)


class Recommender(ABC):
    """A fitted model that scores, ranks and relates movies for users given by external ids.

    Subclasses set `name`, `config_class`, implement `fit`, `_score_items`, `_similar_scores`
    and `_state` / `_restore`, and may override `predict_rating` when they predict ratings.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]]
    predicts_ratings: ClassVar[bool] = False
    # Popularity scores every user alike; every other model needs the user in training.
    scores_unknown_users: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config: Any = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}")
        self._data: Interactions | None = None

    # -- fitting -----------------------------------------------------------------------------
    @abstractmethod
    def fit(self, ratings: pd.DataFrame, catalog: Catalog | None = None) -> Self:
        """Train on a ratings frame.

        Args:
            ratings: `user_id`, `movie_id`, `rating`, `timestamp` rows.
            catalog: Movies, genres and credits; items of the catalog without ratings become
                known items (scorable by content), and models that need them read the frames.

        Returns:
            The fitted model itself.
        """

    def _index(self, ratings: pd.DataFrame, catalog: Catalog | None) -> Interactions:
        """Build and remember the interactions every model keeps for exclude-seen."""
        if len(ratings) == 0:
            raise ModelError("cannot fit on an empty ratings frame")
        extra = catalog.movie_ids if catalog is not None else None
        self._data = Interactions.from_frame(ratings, extra)
        return self._data

    @property
    def data(self) -> Interactions:
        """The training interactions (raises `NotFittedError` before fit)."""
        if self._data is None:
            raise NotFittedError(self.name)
        return self._data

    @property
    def item_ids(self) -> IdArray:
        """Every movie id the model knows, sorted."""
        return self.data.items.ids

    def known_user(self, user_id: int) -> bool:
        """Whether the user was in training."""
        return self.data.users.index(user_id) >= 0

    def seen(self, user_id: int) -> IdArray:
        """Movie ids the user rated in training (empty for an unknown user)."""
        items, _ = self.data.history(self.data.users.index(user_id))
        return self.data.items.ids[items]

    # -- scoring -----------------------------------------------------------------------------
    @abstractmethod
    def _score_items(self, user_index: int, items: IndexArray) -> FloatArray:
        """Scores of known items for a known user (or -1 if `scores_unknown_users`)."""

    @abstractmethod
    def _similar_scores(self, item_index: int) -> FloatArray:
        """Similarity of every item to one item (NaN where undefined)."""

    def score(self, user_id: int, movie_ids: ArrayLike) -> FloatArray:
        """Score movies for a user; higher is better.

        Args:
            user_id: External user id.
            movie_ids: External movie ids.

        Returns:
            One float per movie id, NaN where the user or the movie is unknown to the model.
        """
        ids = np.asarray(movie_ids, dtype=np.int64).ravel()
        out = np.full(len(ids), np.nan)
        user = self.data.users.index(user_id)
        if user < 0 and not self.scores_unknown_users:
            return out
        idx = self.data.items.indices(ids)
        ok = idx >= 0
        if ok.any():
            out[ok] = self._score_items(user, idx[ok])
        return out

    def recommend(
        self,
        user_id: int,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: ArrayLike | None = None,
    ) -> Recommendations:
        """The user's top-k movies.

        Args:
            user_id: External user id.
            k: Length of the list (shorter if fewer movies can be scored).
            exclude_seen: Leave out movies the user rated in training.
            candidates: Restrict the ranking to these movie ids (default: every known movie).

        Returns:
            Movie ids and scores, best first; empty for an unknown user (except popularity).
        """
        user = self.data.users.index(user_id)
        if user < 0 and not self.scores_unknown_users:
            return Recommendations.empty()
        if candidates is None:
            items = np.arange(len(self.data.items), dtype=np.intp)
        else:
            idx = self.data.items.indices(np.asarray(candidates, dtype=np.int64))
            items = np.unique(idx[idx >= 0])
        if len(items) == 0 or k <= 0:
            return Recommendations.empty()
        scores = self._score_items(user, items)
        if exclude_seen and user >= 0:
            seen, _ = self.data.history(user)
            scores = np.where(np.isin(items, seen), np.nan, scores)
        top = top_k_indices(scores, k)
        return Recommendations(self.data.items.ids[items[top]], scores[top].astype(np.float64))

    def similar(self, movie_id: int, k: int) -> Recommendations:
        """Movies most similar to one movie (the movie itself excluded).

        Args:
            movie_id: External movie id.
            k: Length of the list.

        Returns:
            Movie ids and similarities, best first; empty for an unknown movie.
        """
        item = self.data.items.index(movie_id)
        if item < 0 or k <= 0:
            return Recommendations.empty()
        scores = np.asarray(self._similar_scores(item), dtype=np.float64).copy()
        scores[item] = np.nan
        top = top_k_indices(scores, k)
        return Recommendations(self.data.items.ids[top], scores[top])

    def predict_rating(self, user_id: int, movie_id: int) -> float:
        """Predicted rating of a movie by a user.

        Returns:
            The rating on the training scale, or NaN when the model does not predict ratings or
            the user or the movie is unknown.
        """
        return float("nan")

    # -- persistence -------------------------------------------------------------------------
    @abstractmethod
    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """Scalars (JSON) and arrays that `_restore` needs besides the interactions."""

    @abstractmethod
    def _restore(self, scalars: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        """Set the fitted state saved by `_state`."""

    def save(self, path: str | Path) -> Path:
        """Save the fitted model into a directory (no pickle).

        Args:
            path: Directory to create or overwrite.

        Returns:
            The directory.

        Raises:
            NotFittedError: If the model was not fitted.
        """
        target = Path(path)
        scalars, arrays = self._state()
        meta = {
            "model": self.name,
            "format_version": MODEL_FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "state": scalars,
        }
        save_bundle(target, meta, {**self.data.to_arrays("data_"), **arrays})
        return target

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model saved by `save`.

        Args:
            path: The directory `save` wrote.

        Returns:
            The model, scoring exactly as when it was saved.

        Raises:
            ModelFormatError: If the directory holds another model or an unsupported format.
        """
        meta, arrays = load_bundle(Path(path))
        if meta.get("model") != cls.name:
            raise ModelFormatError(f"{path} holds a {meta.get('model')!r} model, not {cls.name!r}")
        if meta.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelFormatError(f"{path}: unsupported model format {meta.get('format_version')}")
        model = cls(cls.config_class.model_validate(meta["config"]))
        model._data = Interactions.from_arrays(arrays, "data_")
        model._restore(meta["state"], arrays)
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"
