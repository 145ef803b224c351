"""The one module that touches the recommender library: loaded models and the registry that swaps them.

Endpoints and services see `LoadedModel`, whose methods return plain dataclasses, and
`ModelRegistry`, which holds the live model (swapped atomically when the worker promotes a new
one) and any other versions an experiment's variants serve.
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ml.artifact import RecommendationList, ServingModel
from ml.coldstart import resolve_liked_titles
from ml.models.base import ModelError
from ml.models.hybrid import STRATEGIES
from ml.titles import TitleIndex
from services.api.errors import NotFound, ServiceUnavailable
from services.live_model import LiveModel, artifact_dir
from services.settings import Settings

logger = logging.getLogger(__name__)

Strategy = str | Mapping[str, float]
"""A strategy name (`hybrid`, `svd`, ...) or blend weights over component names."""

KNOWN_STRATEGIES: tuple[str, ...] = tuple(STRATEGIES)
"""Every strategy name a model can know; a given artifact serves `LoadedModel.strategies`."""
COMPONENT_NAMES: tuple[str, ...] = tuple(name for name in STRATEGIES if name != "hybrid")

LIVE = "live"
"""The alias of whatever version the live-model pointer names (the worker points it at the champion)."""
LIVE_ALIASES = frozenset({LIVE, "champion"})

MODEL_RETRY_AFTER_SECONDS = 30


class ModelNotReady(ServiceUnavailable):
    title = "No model loaded"

    def __init__(self) -> None:
        super().__init__(
            "No recommendation model is loaded yet: train one (POST /v1/admin/retrain) and retry.",
            retry_after=MODEL_RETRY_AFTER_SECONDS,
        )


class ModelVersionNotFound(NotFound):
    title = "Model version not found"

    def __init__(self, version: str) -> None:
        super().__init__(f"No serving artifact for model version {version!r}.")


@dataclass(frozen=True, slots=True)
class MovieFacts:
    """What a recommendation shows about a movie."""

    movie_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scored:
    """A movie with its score and a one-line explanation."""

    movie_id: int
    score: float
    explanation: str


@dataclass(frozen=True, slots=True)
class ComputedList:
    """A ranked list computed by a model."""

    items: list[Scored]
    cold_start: bool
    strategy: str
    model_version: str


@dataclass(frozen=True, slots=True)
class TitleMatch:
    """The catalog movie a free-text title resolved to."""

    query: str
    movie_id: int | None
    score: float | None


@dataclass(frozen=True, slots=True)
class RatingPrediction:
    """A predicted rating, or None with the reason."""

    value: float | None
    reason: str | None


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def strategy_label(strategy: Strategy) -> str:
    """A stable text form of a strategy: its name, or `weights:als=0.5,svd=0.5`."""
    if isinstance(strategy, str):
        return strategy
    return "weights:" + ",".join(f"{name}={float(weight):g}" for name, weight in sorted(strategy.items()))


class LoadedModel:
    """A serving artifact in memory, with a catalog lookup and a fuzzy title index built once.

    Args:
        serving: The loaded artifact.
        path: The folder it came from.
        version: The version it is served as (the live pointer's, or the folder name).
    """

    def __init__(self, serving: ServingModel, path: Path, version: str) -> None:
        self._serving = serving
        self.path = path
        self.version = version
        self.loaded_at = time.time()
        self.strategies: tuple[str, ...] = tuple(serving.strategies)
        self.default_strategy = serving.default_strategy
        self.genre_names: tuple[str, ...] = tuple(serving.genre_names)
        self._genres = {name.casefold(): name for name in self.genre_names}
        self._facts: dict[int, MovieFacts] = {
            info.movie_id: MovieFacts(info.movie_id, info.title, info.year, info.genres)
            for info in serving.movies([int(m) for m in serving.movie_ids])
        }
        self._title_index: TitleIndex | None = None
        self._title_lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, version: str | None = None) -> LoadedModel:
        """Load an artifact folder.

        Raises:
            ModelError: The folder is not a readable serving artifact.
        """
        serving = ServingModel.load(path)
        return cls(serving, path, version or serving.model_version)

    @property
    def n_movies(self) -> int:
        """Catalog size."""
        return len(self._facts)

    def canonical_genre(self, genre: str) -> str | None:
        """The catalog's spelling of a genre (case-insensitive), None if unknown."""
        return self._genres.get(genre.casefold())

    def serves(self, strategy: Strategy) -> bool:
        """Whether this artifact can rank with `strategy`."""
        if isinstance(strategy, str):
            return strategy in self.strategies
        return bool(strategy) and all(name in self.strategies for name in strategy)

    def facts(self, movie_id: int) -> MovieFacts | None:
        """Catalog facts of a movie the model knows."""
        return self._facts.get(movie_id)

    def knows_user(self, user_id: int) -> bool:
        """Whether the user was in training."""
        return self._serving.known_user(user_id)

    def recommend(
        self,
        user_id: int | None,
        k: int,
        *,
        history: Sequence[tuple[int, float]] | None,
        exclude_seen: bool,
        genre: str | None,
        strategy: Strategy,
    ) -> ComputedList:
        """Top-k for a user; `history` (the user's ratings now) is folded in without retraining."""
        result = self._serving.recommend(
            user_id,
            k,
            history=list(history) if history else None,
            exclude_seen=exclude_seen,
            genre=genre,
            strategy=dict(strategy) if not isinstance(strategy, str) else strategy,
        )
        return self._computed(result)

    def recommend_for_liked(self, movie_ids: Sequence[int], k: int, *, strategy: Strategy) -> ComputedList:
        """Top-k for someone who only named movies they like."""
        result = self._serving.recommend_for_liked(
            list(movie_ids), k, strategy=dict(strategy) if not isinstance(strategy, str) else strategy
        )
        return self._computed(result)

    def _computed(self, result: RecommendationList) -> ComputedList:
        return ComputedList(
            items=[Scored(item.movie_id, _finite(item.score), item.explanation) for item in result.items],
            cold_start=result.cold_start,
            strategy=result.strategy,
            model_version=self.version,
        )

    def similar(self, movie_id: int, k: int) -> list[Scored]:
        """Movies like `movie_id`, best first; empty for a movie the model does not know."""
        return [
            Scored(item.movie_id, _finite(item.score), item.explanation)
            for item in self._serving.similar(movie_id, k)
        ]

    def predict_rating(
        self, user_id: int, movie_id: int, *, history: Sequence[tuple[int, float]] | None
    ) -> RatingPrediction:
        """The rating the user would give the movie."""
        prediction = self._serving.predict_rating(
            user_id, movie_id, history=list(history) if history else None
        )
        value = prediction.value
        return RatingPrediction(None if value is None else _finite(value), prediction.reason)

    def match_titles(self, queries: Sequence[str], *, min_score: float | None = None) -> list[TitleMatch]:
        """The catalog movie each free-text title best matches (None where nothing matches)."""
        index = self.title_index()
        resolved = (
            resolve_liked_titles(queries, index)
            if min_score is None
            else resolve_liked_titles(queries, index, min_score=min_score)
        )
        out = []
        for query in queries:
            match = resolved.matches.get(query)
            out.append(
                TitleMatch(query, match.movie_id, round(match.score, 1))
                if match is not None
                else TitleMatch(query, None, None)
            )
        return out

    def title_index(self) -> TitleIndex:
        """The fuzzy title index of this model's catalog, built on first use."""
        if self._title_index is None:
            with self._title_lock:
                if self._title_index is None:
                    facts = list(self._facts.values())
                    popularity = self._serving.scorer.popularity
                    order = self._serving.scorer.items.indices([f.movie_id for f in facts])
                    self._title_index = TitleIndex(
                        [f.movie_id for f in facts],
                        [f.title for f in facts],
                        [f.year if f.year is not None else None for f in facts],
                        popularity=popularity[order],
                    )
        return self._title_index


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's reach.

    A loaded model, the catalog and the libraries are a few hundred thousand long-lived objects; a
    full collection walked them all (over 100 ms on MovieLens 100K), stalling every request in
    flight. Frozen objects are still freed by reference counting when a model is swapped out.
    """
    gc.collect()
    gc.freeze()


class ModelRegistry:
    """The live model and the other versions experiments serve, loaded off the request path.

    Args:
        settings: Where artifacts live (`DATA_DIR/models/<version>`).
        max_loaded: Most non-live versions kept in memory (least recently used go first).
        on_live_change: Called with the new live model after each swap.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        max_loaded: int = 3,
        on_live_change: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.settings = settings
        self.max_loaded = max_loaded
        self._on_live_change = on_live_change
        self._live: LoadedModel | None = None
        self._others: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._failed: dict[str, float] = {}

    @property
    def live(self) -> LoadedModel | None:
        """The model served by default, None before the first promotion."""
        return self._live

    def require_live(self) -> LoadedModel:
        """The live model.

        Raises:
            ModelNotReady: None is loaded yet.
        """
        model = self._live
        if model is None:
            raise ModelNotReady()
        return model

    def _folder(self, version: str, pointer: LiveModel | None = None) -> Path:
        if pointer is not None and pointer.artifact_dir and Path(pointer.artifact_dir).is_dir():
            return Path(pointer.artifact_dir)
        return artifact_dir(self.settings, version)

    def set_live(self, pointer: LiveModel) -> bool:
        """Load `pointer`'s artifact unless it is already live, then swap it in.

        Returns:
            True if the live model changed.
        """
        current = self._live
        if current is not None and current.version == pointer.version:
            return False
        # An artifact that failed to load is retried at most once a minute.
        if time.monotonic() - self._failed.get(pointer.version, -math.inf) < 60:
            return False
        model = self._others.get(pointer.version)
        if model is None:
            try:
                model = LoadedModel.load(self._folder(pointer.version, pointer), pointer.version)
            except (OSError, ValueError, KeyError, ModelError):
                self._failed[pointer.version] = time.monotonic()
                logger.exception(
                    "cannot load model %s; still serving %s",
                    pointer.version,
                    current.version if current else "nothing",
                )
                raise
            freeze_heap()
        self._live = model  # one reference assignment: requests see the old or the new model
        with self._lock:
            self._others.pop(pointer.version, None)
            if current is not None:
                self._remember(current)
        logger.info("serving model %s (was %s)", model.version, current.version if current else "none")
        if self._on_live_change is not None:
            self._on_live_change(model)
        return True

    def _remember(self, model: LoadedModel) -> None:
        self._others[model.version] = model
        self._others.move_to_end(model.version)
        while len(self._others) > self.max_loaded:
            self._others.popitem(last=False)

    def is_loaded(self, version: str | None) -> bool:
        """Whether `get(version)` can answer without loading anything."""
        live = self._live
        if version is None or version in LIVE_ALIASES or (live is not None and live.version == version):
            return True
        return version in self._others

    def exists(self, version: str) -> bool:
        """Whether an artifact of `version` is loaded or on disk."""
        live = self._live
        if (
            version in LIVE_ALIASES
            or (live is not None and live.version == version)
            or version in self._others
        ):
            return True
        return artifact_dir(self.settings, version).is_dir()

    def get(self, version: str | None) -> LoadedModel:
        """The model of `version` (`None`, `live` or `champion`: the live one), loading it on first use.

        Raises:
            ModelNotReady: `live` was asked for and no model is loaded.
            ModelVersionNotFound: No artifact of that version.
        """
        live = self._live
        if version is None or version in LIVE_ALIASES or (live is not None and live.version == version):
            return self.require_live()
        with self._lock:
            model = self._others.get(version)
            if model is not None:
                self._others.move_to_end(version)
                return model
            folder = artifact_dir(self.settings, version)
            if not folder.is_dir():
                raise ModelVersionNotFound(version)
            try:
                model = LoadedModel.load(folder, version)
            except (OSError, ValueError, KeyError, ModelError) as exc:
                logger.exception("cannot load model %s", version)
                raise ModelVersionNotFound(version) from exc
            freeze_heap()
            self._remember(model)
            return model

    def versions(self) -> list[str]:
        """Versions in memory, live first."""
        live = self._live
        return ([live.version] if live else []) + [v for v in self._others if not live or v != live.version]
