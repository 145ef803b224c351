"""The serving artifact: every array the API needs, in one directory, and the model that serves it.

Layout of an artifact directory (format version 1):

    metadata.json   format_version, model_version, created_at, dataset (name, digest, sizes),
                    metrics, configuration, default strategy, components, re-ranker features
                    and weights, rating-blend weights, arrays file size and sha256
    arrays.npz      uncompressed numpy arrays, no pickle, floats as float32:
                      item_ids, titles, years, genre_indptr/genre_indices/genre_names
                      history_*        each user's training ratings (CSR) and the user ids
                      ease_*, knn_*    item x item weights (dense, or top neighbours as CSR)
                      content_sim_*    content cosine similarities (same layout)
                      content_features_*  TF-IDF vectors (`ItemFeatures.to_arrays`), for reasons
                      als_users/als_items, svd_users/svd_items/svd_user_bias/svd_item_bias
                      rating_knn_*     KNNBaseline similarities and baselines (rating blend)
                      popularity, popularity_z, *_covered masks

`ServingModel` loads it with numpy only: importing this module does not import Surprise,
`implicit` or MLflow, and loading the MovieLens 100K artifact takes well under a second.
`train_all` is the one call the worker makes: evaluate on a holdout, fit on everything, write the
artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ml.coldstart import LIKED_RATING, History, history_from_liked
from ml.models.base import Catalog, ModelFormatError, top_k_indices
from ml.models.hybrid import (
    COMPONENTS,
    Explanation,
    HybridConfig,
    HybridRecommender,
    HybridScorer,
    RankedItems,
    Strategy,
    UserState,
)

logger = logging.getLogger(__name__)

ARTIFACT_FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
ARRAYS_FILE = "arrays.npz"
DEFAULT_STRATEGY = "hybrid"

Progress = Callable[[str, int, int], None]
"""Called as progress(stage, done, total)."""


# -- what the API gets back ---------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """One recommended movie with its score and a one-line explanation."""

    movie_id: int
    score: float
    explanation: str
    reason: str = "popular"
    """Kind of explanation: rated, content, similar_users, predicted_rating, popular."""
    related_movie_id: int | None = None
    """The movie the explanation refers to ("because you rated Heat ..."), if any."""


@dataclass(frozen=True)
class RecommendationList:
    """A ranked list and how it was made."""

    items: list[Recommendation]
    cold_start: bool
    """The user was not in training: results come from a folded-in history or popularity."""
    strategy: str
    """The ranking actually used ("popularity" when the requested one could not score)."""
    model_version: str

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    @property
    def movie_ids(self) -> list[int]:
        """The recommended ids, best first."""
        return [item.movie_id for item in self.items]


@dataclass(frozen=True)
class RatingPrediction:
    """A predicted rating, or None with the reason it cannot be predicted."""

    value: float | None
    reason: str | None = None


@dataclass(frozen=True)
class MovieInfo:
    """Catalog facts about a movie."""

    movie_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]


# -- the serving model --------------------------------------------------------------------------


class ServingModel:
    """Recommendations, similar movies and rating predictions from a loaded artifact (numpy only).

    Args:
        scorer: The hybrid's arrays and ranking code.
        years: Release year per item position (-1 unknown).
        genre_indptr, genre_indices: Genres of each item position (CSR over `genre_names`).
        genre_names: Genre vocabulary.
        metadata: The artifact's metadata.
    """

    def __init__(
        self,
        scorer: HybridScorer,
        years: NDArray[np.int32],
        genre_indptr: NDArray[np.int64],
        genre_indices: NDArray[np.int32],
        genre_names: Sequence[str],
        metadata: dict[str, Any],
    ) -> None:
        self.scorer = scorer
        self.years = years
        self.genre_indptr = genre_indptr
        self.genre_indices = genre_indices
        self.genre_names = [str(name) for name in genre_names]
        self.metadata = metadata
        self._genre_lookup = {name.casefold(): i for i, name in enumerate(self.genre_names)}
        self._genre_masks: dict[int, NDArray[np.bool_]] = {}
        self._als_unit: NDArray[np.float32] | None = None

    # -- identity and catalog ------------------------------------------------------------------
    @property
    def model_version(self) -> str:
        """The version string of this artifact."""
        return str(self.metadata.get("model_version", "unknown"))

    @property
    def default_strategy(self) -> str:
        """The strategy used when a request names none."""
        return str(self.metadata.get("default_strategy", DEFAULT_STRATEGY))

    @property
    def strategies(self) -> list[str]:
        """Strategy names this artifact can serve."""
        return ["hybrid", *self.scorer.components()]

    @property
    def movie_ids(self) -> NDArray[np.int64]:
        """Every catalog movie id, sorted."""
        return self.scorer.items.ids

    def known_user(self, user_id: int) -> bool:
        """Whether the user was in training."""
        return self.scorer.history.users.index(user_id) >= 0

    def known_movie(self, movie_id: int) -> bool:
        """Whether the movie is in the catalog."""
        return self.scorer.items.index(movie_id) >= 0

    def movie(self, movie_id: int) -> MovieInfo | None:
        """Catalog facts of one movie, None if unknown."""
        item = self.scorer.items.index(movie_id)
        return None if item < 0 else self._info(item)

    def movies(self, movie_ids: Sequence[int]) -> list[MovieInfo]:
        """Catalog facts of several movies (unknown ids skipped)."""
        return [self._info(int(i)) for i in self.scorer.items.indices(movie_ids) if i >= 0]

    def _info(self, item: int) -> MovieInfo:
        year = int(self.years[item])
        genres = self.genre_indices[self.genre_indptr[item] : self.genre_indptr[item + 1]]
        return MovieInfo(
            movie_id=int(self.scorer.items.ids[item]),
            title=str(self.scorer.titles[item]),
            year=None if year < 0 else year,
            genres=tuple(self.genre_names[g] for g in genres),
        )

    def history(self, user_id: int) -> list[tuple[int, float]]:
        """A training user's ratings as (movie_id, rating); empty for an unknown user."""
        items, ratings = self.scorer.history.history(self.scorer.history.users.index(user_id))
        return [(int(m), float(r)) for m, r in zip(self.scorer.items.ids[items], ratings, strict=True)]

    def genre_mask(self, genre: str) -> NDArray[np.bool_]:
        """Items of a genre (case-insensitive).

        Raises:
            KeyError: If the genre is not in the catalog.
        """
        index = self._genre_lookup.get(genre.casefold())
        if index is None:
            raise KeyError(f"unknown genre {genre!r}; known: {', '.join(self.genre_names)}")
        if index not in self._genre_masks:
            rows = np.repeat(np.arange(len(self.genre_indptr) - 1), np.diff(self.genre_indptr))
            mask = np.zeros(self.scorer.n_items, dtype=bool)
            mask[rows[self.genre_indices == index]] = True
            self._genre_masks[index] = mask
        return self._genre_masks[index]

    # -- recommendations -----------------------------------------------------------------------
    def recommend(
        self,
        user_id: int | None,
        k: int = 10,
        *,
        history: History | None = None,
        exclude_seen: bool = True,
        genre: str | None = None,
        strategy: Strategy | None = None,
    ) -> RecommendationList:
        """Top-k movies for a user.

        Args:
            user_id: The user (None for an anonymous request with a history).
            k: Length of the list.
            history: (movie_id, rating) pairs that replace the stored history, e.g. the user's
                ratings as they are now in the database; folded in without retraining.
            exclude_seen: Leave out the movies of the (given or stored) history.
            genre: Only movies of this genre.
            strategy: "hybrid" (default), "svd", "ease", "als", "knn", "content", "popularity",
                or a dict of weights over those component names.

        Returns:
            The list; a user unknown to the model without history gets popular movies, flagged
            as a cold start.

        Raises:
            KeyError: Unknown genre.
            ModelError: Unknown strategy or component.
        """
        state = self.scorer.state(user_id, history)
        cold = user_id is None or not self.known_user(user_id)
        return self._recommend_state(state, k, cold, exclude_seen, genre, strategy)

    def recommend_for_liked(
        self,
        movie_ids: Sequence[int],
        k: int = 10,
        *,
        genre: str | None = None,
        strategy: Strategy | None = None,
    ) -> RecommendationList:
        """Top-k for someone who only named movies they like (a new user at sign-up).

        Args:
            movie_ids: Liked movies (e.g. resolved from titles by `ml.coldstart.resolve_liked_titles`).
            k: Length of the list.
            genre: Only movies of this genre.
            strategy: As in `recommend`.

        Returns:
            The list, flagged as a cold start; popular movies if no liked movie is known.
        """
        history = history_from_liked(movie_ids, LIKED_RATING)
        state = None
        if history:
            ids = np.asarray([m for m, _ in history], dtype=np.int64)
            state = self.scorer.state_from_history(ids, np.full(len(ids), LIKED_RATING), liked_only=True)
            if len(state.items) == 0:
                state = None
        return self._recommend_state(state, k, True, True, genre, strategy)

    def _recommend_state(
        self,
        state: UserState | None,
        k: int,
        cold: bool,
        exclude_seen: bool,
        genre: str | None,
        strategy: Strategy | None,
    ) -> RecommendationList:
        allowed = None if genre is None else self.genre_mask(genre)
        chosen: Strategy = strategy if strategy is not None else self.default_strategy
        if k <= 0:
            return RecommendationList([], cold, self._strategy_name(chosen), self.model_version)
        if state is None:
            return self._popular(k, cold, allowed, None)
        ranked = self.scorer.rank(state, k, exclude_seen=exclude_seen, allowed=allowed, strategy=chosen)
        if len(ranked.items) == 0:
            return self._popular(k, cold, allowed, state if exclude_seen else None)
        explanations = self.scorer.explain(state, ranked)
        return RecommendationList(
            self._items(ranked, explanations), cold, ranked.strategy, self.model_version
        )

    def _popular(
        self, k: int, cold: bool, allowed: NDArray[np.bool_] | None, state: UserState | None
    ) -> RecommendationList:
        empty = UserState(items=np.empty(0, dtype=np.intp), ratings=np.empty(0, dtype=np.float32))
        ranked = self.scorer.rank(
            state or empty, k, exclude_seen=state is not None, allowed=allowed, strategy="popularity"
        )
        explanations = [Explanation("popular", "popular with everyone")] * len(ranked.items)
        return RecommendationList(self._items(ranked, explanations), cold, "popularity", self.model_version)

    def _items(self, ranked: RankedItems, explanations: Sequence[Explanation]) -> list[Recommendation]:
        ids = self.scorer.items.ids[ranked.items]
        return [
            Recommendation(int(m), float(s), e.text, e.kind, e.movie_id)
            for m, s, e in zip(ids, ranked.scores, explanations, strict=True)
        ]

    @staticmethod
    def _strategy_name(strategy: Strategy) -> str:
        return strategy if isinstance(strategy, str) else "weights"

    # -- similar movies ------------------------------------------------------------------------
    def similar(self, movie_id: int, k: int = 10) -> list[Recommendation]:
        """Movies like one movie: content and collaborative similarity, averaged, with reasons.

        The collaborative part is the cosine of ALS item factors; a movie nobody rated has none,
        so its neighbours come from content alone (and vice versa without a catalog).

        Args:
            movie_id: The movie.
            k: How many.

        Returns:
            Similar movies, best first; empty for an unknown movie.
        """
        item = self.scorer.items.index(movie_id)
        if item < 0 or k <= 0:
            return []
        parts: list[NDArray[np.float64]] = []
        content = None
        known = self.scorer.content_known
        if self.scorer.content is not None and known is not None and known[item]:
            content = self.scorer.content.row(item)
            parts.append(content)
        collaborative = self._als_cosine(item)
        if collaborative is not None:
            parts.append(collaborative)
        if not parts:
            return []
        scores = np.mean(parts, axis=0)
        scores[item] = np.nan
        top = top_k_indices(scores, k)
        title = str(self.scorer.titles[item])
        out = []
        for other in top:
            reason, kind = f"people who liked {title} also liked it", "similar_users"
            if content is not None and content[other] > 0:
                reason, kind = self.scorer._content_reason(int(other), item), "content"
            out.append(
                Recommendation(
                    int(self.scorer.items.ids[other]), float(scores[other]), reason, kind, movie_id
                )
            )
        return out

    def _als_cosine(self, item: int) -> NDArray[np.float64] | None:
        scorer = self.scorer
        if scorer.als_items is None or scorer.als_covered is None or not scorer.als_covered[item]:
            return None
        if self._als_unit is None:
            norms = np.linalg.norm(scorer.als_items, axis=1, keepdims=True)
            self._als_unit = (scorer.als_items / np.maximum(norms, 1e-12)).astype(np.float32)
        cosine = (self._als_unit @ self._als_unit[item]).astype(np.float64)
        return np.where(scorer.als_covered, cosine, 0.0)

    # -- ratings -------------------------------------------------------------------------------
    def predict_rating(
        self, user_id: int | None, movie_id: int, *, history: History | None = None
    ) -> RatingPrediction:
        """The rating a user would give a movie (SVD + KNNBaseline blend).

        Args:
            user_id: The user (None with a history for an anonymous request).
            movie_id: The movie.
            history: Ratings replacing the stored history (folded in).

        Returns:
            The prediction clipped to the rating scale, or None with the reason.
        """
        item = self.scorer.items.index(movie_id)
        if item < 0:
            return RatingPrediction(None, "unknown movie")
        if self.scorer.svd_covered is None or not self.scorer.svd_covered[item]:
            return RatingPrediction(None, "nobody has rated this movie yet")
        state = self.scorer.state(user_id, history)
        if state is None:
            return RatingPrediction(None, "unknown user without ratings")
        if state.svd is None or (state.user_index < 0 and not np.any(self.scorer.svd_covered[state.items])):
            return RatingPrediction(None, "none of the user's rated movies is known to the model")
        value = float(self.scorer.predict_ratings(state, np.asarray([item], dtype=np.intp))[0])
        return RatingPrediction(value) if np.isfinite(value) else RatingPrediction(None, "cannot predict")

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the artifact directory (metadata.json + arrays.npz).

        Args:
            path: Directory to create (or overwrite).

        Returns:
            The directory.
        """
        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        scalars, arrays = self.scorer.to_arrays()
        arrays |= {
            "years": self.years.astype(np.int32),
            "genre_indptr": self.genre_indptr.astype(np.int64),
            "genre_indices": self.genre_indices.astype(np.int32),
            "genre_names": np.asarray(self.genre_names, dtype=np.str_),
        }
        for key, value in arrays.items():
            if value.dtype == object:
                raise ModelFormatError(f"array {key!r} has dtype object; it would need pickle")
            if value.dtype == np.float64:
                arrays[key] = value.astype(np.float32)
        np.savez(target / ARRAYS_FILE, allow_pickle=False, **arrays)
        digest = hashlib.sha256((target / ARRAYS_FILE).read_bytes()).hexdigest()
        meta = self.metadata | {
            "format_version": ARTIFACT_FORMAT_VERSION,
            "scorer": scalars,
            "arrays": {"file": ARRAYS_FILE, "bytes": (target / ARRAYS_FILE).stat().st_size, "sha256": digest},
        }
        (target / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        self.metadata = meta
        logger.info("wrote serving artifact %s (%.1f MB)", target, meta["arrays"]["bytes"] / 1e6)
        return target

    @classmethod
    def load(cls, path: str | Path) -> ServingModel:
        """Load an artifact directory written by `save`.

        Args:
            path: The directory.

        Returns:
            The serving model.

        Raises:
            ModelFormatError: Missing files or an unsupported format version.
        """
        started = time.perf_counter()
        folder = Path(path)
        meta_file, arrays_file = folder / METADATA_FILE, folder / ARRAYS_FILE
        if not meta_file.is_file() or not arrays_file.is_file():
            raise ModelFormatError(f"{folder} is not a serving artifact ({METADATA_FILE} + {ARRAYS_FILE})")
        meta = json.loads(meta_file.read_text())
        version = meta.get("format_version")
        if version != ARTIFACT_FORMAT_VERSION:
            raise ModelFormatError(
                f"{folder}: artifact format {version} is not supported (expected {ARTIFACT_FORMAT_VERSION})"
            )
        with np.load(arrays_file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        scorer = HybridScorer.from_arrays(meta["scorer"], arrays)
        model = cls(
            scorer,
            arrays["years"],
            arrays["genre_indptr"],
            arrays["genre_indices"],
            [str(g) for g in arrays["genre_names"]],
            meta,
        )
        logger.info(
            "loaded serving artifact %s in %.3fs", meta.get("model_version"), time.perf_counter() - started
        )
        return model

    @classmethod
    def from_hybrid(
        cls, hybrid: HybridRecommender, catalog: Catalog | None, metadata: dict[str, Any] | None = None
    ) -> ServingModel:
        """A serving model from a fitted hybrid, arrays rounded to float32 as in the artifact.

        Args:
            hybrid: The fitted hybrid.
            catalog: Catalog frames (years and genres); None leaves them unknown.
            metadata: Metadata to carry (model version, metrics, ...).

        Returns:
            The serving model, scoring exactly as after a save and load.
        """
        scalars, arrays = hybrid._fitted().to_arrays()
        arrays = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in arrays.items()}
        scorer = HybridScorer.from_arrays(json.loads(json.dumps(scalars, default=float)), arrays)
        years, indptr, indices, names = _catalog_arrays(scorer.items.ids, catalog)
        return cls(scorer, years, indptr, indices, names, dict(metadata or {}))


def _catalog_arrays(
    item_ids: NDArray[np.int64], catalog: Catalog | None
) -> tuple[NDArray[np.int32], NDArray[np.int64], NDArray[np.int32], list[str]]:
    """Years and genre CSR aligned with `item_ids`."""
    n = len(item_ids)
    if catalog is None:
        return np.full(n, -1, np.int32), np.zeros(n + 1, np.int64), np.empty(0, np.int32), []
    movies = catalog.movies.drop_duplicates("movie_id").set_index("movie_id")
    year_values = (
        pd.to_numeric(movies["year"], errors="coerce") if "year" in movies else pd.Series(dtype=float)
    )
    years = year_values.reindex(item_ids).fillna(-1).to_numpy(dtype=np.int32)
    genres = catalog.genres.dropna()
    names = sorted({str(g) for g in genres["genre"].unique()})
    lookup = {name: i for i, name in enumerate(names)}
    positions = np.searchsorted(item_ids, genres["movie_id"].to_numpy(dtype=np.int64))
    positions = np.minimum(positions, max(n - 1, 0))
    ok = item_ids[positions] == genres["movie_id"].to_numpy(dtype=np.int64)
    rows = positions[ok]
    cols = np.asarray([lookup[str(g)] for g in genres["genre"].to_numpy()[ok]], dtype=np.int32)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return years, np.cumsum(indptr), cols, names


# -- training entry point -----------------------------------------------------------------------


class TrainConfig(BaseModel):
    """Everything `train_all` needs; flattened into MLflow params by `flat_params`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hybrid: HybridConfig = Field(default_factory=HybridConfig)
    evaluate: bool = True
    """Fit once on a holdout split and report its metrics before fitting on everything."""
    protocol: Literal["user", "temporal"] = "user"
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    k: int = Field(default=10, ge=1)
    seed: int = 42
    default_strategy: str = DEFAULT_STRATEGY


@dataclass
class TrainResult:
    """What `train_all` produced."""

    model_version: str
    artifact_path: Path
    metrics: dict[str, float]
    hybrid: HybridRecommender
    serving: ServingModel
    params: dict[str, str] = field(default_factory=dict)

    @property
    def models(self) -> dict[str, Any]:
        """The component models fitted on all ratings (svd, ease, als, knn, content, ...)."""
        return dict(self.hybrid.models_)


def flat_params(config: BaseModel, prefix: str = "") -> dict[str, str]:
    """A nested config as flat `a.b.c -> value` strings (MLflow params)."""
    out: dict[str, str] = {}
    for key, value in config.model_dump(mode="json").items():
        _flatten(f"{prefix}{key}", value, out)
    return out


def _flatten(key: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for sub, inner in value.items():
            _flatten(f"{key}.{sub}", inner, out)
    else:
        out[key] = str(value)


def dataset_digest(ratings: pd.DataFrame, movies: pd.DataFrame | None = None) -> str:
    """A sha256 of the ratings (order-independent) and the movie ids: which data a model saw."""
    columns = [c for c in ("user_id", "movie_id", "rating", "timestamp") if c in ratings]
    frame = ratings[columns].sort_values(columns[:2], kind="stable")
    digest = hashlib.sha256()
    for column in columns:
        digest.update(np.ascontiguousarray(frame[column].to_numpy()).tobytes())
    if movies is not None:
        digest.update(np.sort(movies["movie_id"].to_numpy(dtype=np.int64)).tobytes())
    return digest.hexdigest()


def make_model_version(created_at: datetime, digest: str) -> str:
    """`hybrid-YYYYmmddTHHMMSS-<digest8>`: sortable by time, tied to the data."""
    return f"hybrid-{created_at:%Y%m%dT%H%M%S}-{digest[:8]}"


def evaluate_holdout(
    hybrid: HybridRecommender, train: pd.DataFrame, test: pd.DataFrame, k: int, n_items: int
) -> dict[str, float]:
    """Ranking metrics of the hybrid and its components, rating metrics of the predictors.

    Args:
        hybrid: A hybrid fitted on `train`.
        train: Its training ratings.
        test: Held-out ratings.
        k: List length.
        n_items: Catalog size for coverage.

    Returns:
        Flat metrics such as `hybrid.ndcg_at_10`, `svd.rmse`, `ease.precision_at_10`.
    """
    from ml.evaluation.metrics import item_popularity, ranking_metrics, rating_metrics, relevant_items

    relevant = relevant_items(test)
    users = list(relevant)
    popularity = item_popularity(train, items=hybrid.item_ids, smoothing=1)
    out: dict[str, float] = {}
    rankers: dict[str, Any] = {
        "hybrid": hybrid,
        **{n: m for n, m in hybrid.models_.items() if n in COMPONENTS},
    }
    for name, model in rankers.items():
        lists = [model.recommend(u, k).movie_ids for u in users]
        report = ranking_metrics(
            lists, [relevant[u] for u in users], k=k, n_items=n_items, item_popularity=popularity
        )
        for metric, value in report.items():
            if metric not in ("n_lists", "n_users"):
                out[f"{name}.{metric}_at_{k}"] = float(value)
    truth = test["rating"].to_numpy(np.float64)
    for name in ("hybrid", "svd"):
        model = hybrid if name == "hybrid" else hybrid.models_["svd"]
        predicted = np.asarray(
            [
                model.predict_rating(int(u), int(m))
                for u, m in zip(test["user_id"], test["movie_id"], strict=True)
            ]
        )
        for metric, value in rating_metrics(truth, predicted).items():
            out[f"{name}.{metric}"] = float(value)
    return out


def train_all(
    dataset: Any,
    output_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    progress: Progress | None = None,
    created_at: datetime | None = None,
) -> TrainResult:
    """Evaluate on a holdout, fit every model on all ratings and write the serving artifact.

    Args:
        dataset: An `ml.datasets.Dataset` (ratings and catalog frames).
        output_dir: Directory under which the artifact directory (named by model version) goes.
        config: Models and evaluation settings; defaults if None.
        progress: Called as progress(stage, done, total) after each stage.
        created_at: Timestamp of the model (now by default).

    Returns:
        Model version, artifact path, metrics (holdout metrics prefixed by model name, plus
        `hybrid.validation_*` from the re-ranker's own validation), the fitted hybrid and the
        loaded serving model.

    Raises:
        ModelError: Empty ratings or no usable validation data.
    """
    from ml.evaluation.splitting import temporal_holdout, user_holdout

    config = config or TrainConfig()
    created = created_at or datetime.now(UTC)
    catalog = Catalog.from_dataset(dataset)
    ratings = dataset.ratings
    total = 3 if config.evaluate else 2
    step = 0

    def report(stage: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(stage, step, total)

    metrics: dict[str, float] = {}
    if config.evaluate:
        with _timer("holdout evaluation", metrics, "evaluation_seconds"):
            split = (
                user_holdout(ratings, config.test_fraction, config.seed)
                if config.protocol == "user"
                else temporal_holdout(ratings, fraction=config.test_fraction)
            )
            held = HybridRecommender(config.hybrid).fit(split.train, catalog)
            metrics |= evaluate_holdout(held, split.train, split.test, config.k, len(catalog.movie_ids))
        report("evaluated on a holdout")
    with _timer("final fit", metrics, "fit_seconds"):
        hybrid = HybridRecommender(config.hybrid).fit(ratings, catalog)
    metrics |= {f"hybrid.{k}": v for k, v in hybrid.validation_metrics_.items()}
    report("fitted on all ratings")

    digest = dataset_digest(ratings, dataset.movies)
    version = make_model_version(created, digest)
    metadata = {
        "model_version": version,
        "created_at": created.isoformat(),
        "dataset": {
            "name": getattr(dataset, "name", "unknown"),
            "digest": digest,
            "ratings": len(ratings),
            "users": int(ratings["user_id"].nunique()),
            "movies": len(catalog.movie_ids),
        },
        "metrics": metrics,
        "config": config.model_dump(mode="json"),
        "default_strategy": config.default_strategy,
        "components": hybrid._fitted().components(),
    }
    serving = ServingModel.from_hybrid(hybrid, catalog, metadata)
    path = serving.save(Path(output_dir) / version)
    report("wrote the serving artifact")
    return TrainResult(version, path, metrics, hybrid, serving, flat_params(config))


def build_serving_artifact(
    dataset: Any, output_dir: str | Path, config: TrainConfig | None = None, **kwargs: Any
) -> Path:
    """`train_all` without holding on to the fitted models; returns the artifact directory."""
    return train_all(dataset, output_dir, config, **kwargs).artifact_path


class _timer:
    """Context manager adding the elapsed seconds to a metrics dict and the log."""

    def __init__(self, label: str, metrics: dict[str, float], key: str) -> None:
        self.label, self.metrics, self.key = label, metrics, key

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.started
        self.metrics[self.key] = elapsed
        logger.info("%s took %.1fs", self.label, elapsed)


def load_serving_model(path: str | Path) -> ServingModel:
    """Shorthand for `ServingModel.load`."""
    return ServingModel.load(path)
