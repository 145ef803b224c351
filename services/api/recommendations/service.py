"""Recommendation lists: from the Redis cache when it has them, else computed and written through.

For each user: the running experiment's variant picks the model version and strategy; one Redis
round trip reads every user's cached fields; users the cache cannot serve get their current
ratings from PostgreSQL in one query, folded into the model without retraining, and the computed
lists go back to Redis in one more round trip. Without Redis, lists are computed; without the
database, they are computed from the ratings the model was trained on (and not cached).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from fastapi.concurrency import run_in_threadpool
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from services.api.auth.ratelimit import RateLimitStatus
from services.api.errors import MovierecError, NotFound
from services.api.experiments.service import Assignment
from services.api.movies.service import MovieNotFound
from services.api.recommendations import cache
from services.api.recommendations.engine import (
    LoadedModel,
    ModelVersionNotFound,
    MovieFacts,
    RatingPrediction,
    Scored,
    Strategy,
    TitleMatch,
    strategy_label,
)
from services.api.redis_guard import RedisGuard, RedisUnavailable
from services.api.state import AppState
from services.api.users.repository import History, RatingRepository
from services.live_model import PRECOMPUTED_TOP_N

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UnknownGenre(NotFound):
    title = "Genre not found"

    def __init__(self, genre: str, known: Sequence[str]) -> None:
        super().__init__(f"No genre {genre!r} in the catalog; known genres: {', '.join(known)}.")


@dataclass(frozen=True, slots=True)
class ServedList:
    """A user's list as served, with what made it."""

    user_id: int
    model_version: str
    strategy: str
    assignment: Assignment | None
    cold_start: bool
    source: Literal["cache", "model"]
    items: list[tuple[MovieFacts, Scored]]


@dataclass(frozen=True, slots=True)
class _Plan:
    user_id: int
    model: LoadedModel
    strategy: Strategy
    label: str
    assignment: Assignment | None
    genre: str | None
    exclude_seen: bool

    @property
    def field(self) -> str:
        return cache.cache_field(self.label, genre=self.genre, exclude_seen=self.exclude_seen)

    @property
    def base_field(self) -> str:
        return cache.cache_field(self.label, exclude_seen=self.exclude_seen)

    def lookup(self) -> cache.CacheLookup:
        fields = (self.field,) if self.genre is None else (self.field, self.base_field)
        return cache.CacheLookup(self.model.version, self.user_id, fields)


def _take(
    model: LoadedModel, items: Iterable[Scored], k: int, genre: str | None
) -> list[tuple[MovieFacts, Scored]]:
    out = []
    for item in items:
        facts = model.facts(item.movie_id)
        if facts is None or (genre is not None and genre not in facts.genres):
            continue
        out.append((facts, item))
        if len(out) == k:
            break
    return out


async def computed(state: AppState, work: Callable[[], T]) -> T:
    """Run model work on a worker thread, at most `API_COMPUTE_CONCURRENCY` at once per process.

    Scoring is CPU-bound and mostly holds the GIL: running more at once only makes them thrash
    (16 concurrent cache misses on 2 cores: 117 req/s unbounded, 138 with 2 slots).
    """
    async with state.compute_slots:
        return await run_in_threadpool(work)


def _variant_version(assignment: Assignment | None) -> str | None:
    return assignment.variant.model_version if assignment is not None else None


@dataclass(frozen=True, slots=True)
class RequestCount:
    """A request still to be counted against its API key's rate limit, and what to do with the result
    (set the headers; raise `RateLimited` when over the limit)."""

    key_id: int
    settle: Callable[[RateLimitStatus | None], None]


class InvalidationQueue:
    """Users whose cached lists must go but could not be deleted (Redis was down); retried later."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._lock = threading.Lock()

    def add(self, user_id: int) -> None:
        with self._lock:
            self._pending.add(user_id)

    def take(self) -> set[int]:
        with self._lock:
            pending, self._pending = self._pending, set()
        return pending

    def __len__(self) -> int:
        return len(self._pending)


class RecommendationService:
    def recommend(
        self,
        state: AppState,
        *,
        user_ids: Sequence[int],
        k: int,
        genre: str | None = None,
        exclude_seen: bool = True,
    ) -> list[ServedList]:
        """Lists for each distinct user, in order (see the module docstring). Blocking.

        Raises:
            ModelNotReady: No model is loaded.
            UnknownGenre: `genre` is not in the catalog.
        """
        plans = self._plans(state, self._assign(state, user_ids), genre, exclude_seen)
        lookups = [plan.lookup() for plan in plans]
        reads: list[cache.CacheRead | None]
        try:
            reads = list(state.redis.run(lambda client: cache.read_many(client, lookups)))
        except (RedisUnavailable, RedisError) as exc:
            self._log_read_error(exc)
            reads = [None] * len(plans)
        served, misses = self._from_cache_all(state, plans, reads, k)
        if misses:
            served |= self._compute(state, misses, k, reads[0] is not None)
        return self._finish(state, plans, served)

    async def arecommend(
        self,
        state: AppState,
        *,
        user_ids: Sequence[int],
        k: int,
        genre: str | None = None,
        exclude_seen: bool = True,
        count: RequestCount | None = None,
    ) -> list[ServedList]:
        """`recommend` from the event loop: on a cache hit, one asyncio Redis round trip (which also
        counts the request against its key's rate limit, if `count` is given) and no worker thread.

        Raises:
            RateLimited: From `count.settle`, before anything is computed or logged.
        """
        assignments = self._assign(state, user_ids)
        if not all(state.models.is_loaded(_variant_version(a)) for a in assignments.values()):
            # A variant's model version must be loaded from disk first: not on the event loop.
            if count is not None:
                count.settle(await state.limiter.ahit(count.key_id))
            return await computed(
                state,
                lambda: self.recommend(state, user_ids=user_ids, k=k, genre=genre, exclude_seen=exclude_seen),
            )
        try:
            plans = self._plans(state, assignments, genre, exclude_seen)
        except MovierecError:
            if count is not None:  # a refused request counts too
                count.settle(await state.limiter.ahit(count.key_id))
            raise
        lookups = [plan.lookup() for plan in plans]
        now = time.time()
        counter = state.limiter.counter(count.key_id, now) if count is not None else None
        reads: list[cache.CacheRead | None]
        status: RateLimitStatus | None = None
        try:
            counts, found = await state.redis.arun(
                lambda client: cache.acount_and_read(client, lookups, counter)
            )
        except (RedisUnavailable, RedisError) as exc:
            self._log_read_error(exc)
            if count is not None:
                state.limiter.warn_unavailable(exc, now)
            reads = [None] * len(plans)
        else:
            if counts is not None:
                status = state.limiter.status_of(counts, now)
            reads = list(found)
        if count is not None:
            count.settle(status)
        served, misses = self._from_cache_all(state, plans, reads, k)
        if misses:
            served |= await computed(state, lambda: self._compute(state, misses, k, reads[0] is not None))
        return self._finish(state, plans, served)

    @staticmethod
    def _assign(state: AppState, user_ids: Sequence[int]) -> dict[int, Assignment | None]:
        """Each distinct user's variant, in order."""
        if state.experiments.current is None:
            return dict.fromkeys(user_ids)
        return {user_id: state.experiments.assign(user_id) for user_id in dict.fromkeys(user_ids)}

    @staticmethod
    def _log_read_error(exc: Exception) -> None:
        if not isinstance(exc, RedisUnavailable):
            logger.warning("cache read failed: %s", exc)

    def _plans(
        self,
        state: AppState,
        assignments: dict[int, Assignment | None],
        genre: str | None,
        exclude_seen: bool,
    ) -> list[_Plan]:
        live = state.models.require_live()
        return [
            self._plan(state, live, user_id, assignment, genre, exclude_seen)
            for user_id, assignment in assignments.items()
        ]

    def _from_cache_all(
        self, state: AppState, plans: Sequence[_Plan], reads: Sequence[cache.CacheRead | None], k: int
    ) -> tuple[dict[int, ServedList], list[tuple[_Plan, cache.CacheRead | None]]]:
        served: dict[int, ServedList] = {}
        misses: list[tuple[_Plan, cache.CacheRead | None]] = []
        for plan, read in zip(plans, reads, strict=True):
            items = self._from_cache(plan, read, k)
            if items is None or read is None:
                misses.append((plan, read))
                continue
            served[plan.user_id] = self._served(plan, read.cold_start, "cache", items)
            state.metrics.cache_results["hit"].inc()
        return served, misses

    @staticmethod
    def _finish(state: AppState, plans: Sequence[_Plan], served: dict[int, ServedList]) -> list[ServedList]:
        for plan in plans:
            if plan.assignment is not None:
                state.exposures.record(plan.assignment, plan.user_id)
        return [served[plan.user_id] for plan in plans]

    def _plan(
        self,
        state: AppState,
        live: LoadedModel,
        user_id: int,
        assignment: Assignment | None,
        genre: str | None,
        exclude_seen: bool,
    ) -> _Plan:
        variant = assignment.variant if assignment is not None else None
        model = live
        if variant is not None and variant.model_version is not None:
            try:
                model = state.models.get(variant.model_version)
            except ModelVersionNotFound:
                logger.warning(
                    "variant %s serves missing model %s; serving the live one",
                    variant.name,
                    variant.model_version,
                )
        strategy: Strategy = model.default_strategy
        if variant is not None and variant.strategy is not None and model.serves(variant.strategy):
            strategy = variant.strategy
        canonical = None
        if genre is not None:
            canonical = model.canonical_genre(genre)
            if canonical is None:
                raise UnknownGenre(genre, model.genre_names)
        return _Plan(user_id, model, strategy, strategy_label(strategy), assignment, canonical, exclude_seen)

    @staticmethod
    def _from_cache(
        plan: _Plan, read: cache.CacheRead | None, k: int
    ) -> list[tuple[MovieFacts, Scored]] | None:
        if read is None:
            return None
        exact = read.lists.get(plan.field)
        if exact is not None:
            return _take(plan.model, cache.scored(exact), k, plan.genre)
        if plan.genre is not None:
            base = read.lists.get(plan.base_field)
            if base is not None:
                filtered = _take(plan.model, cache.scored(base), k, plan.genre)
                if len(filtered) == k:
                    return filtered
        return None

    @staticmethod
    def _served(
        plan: _Plan,
        cold_start: bool,
        source: Literal["cache", "model"],
        items: list[tuple[MovieFacts, Scored]],
    ) -> ServedList:
        return ServedList(
            plan.user_id, plan.model.version, plan.label, plan.assignment, cold_start, source, items
        )

    def _compute(
        self, state: AppState, misses: Sequence[tuple[_Plan, cache.CacheRead | None]], k: int, redis_up: bool
    ) -> dict[int, ServedList]:
        """Compute (and cache) the lists the cache could not serve. Blocking."""
        histories, current = self.histories(state, [plan.user_id for plan, _ in misses])
        served: dict[int, ServedList] = {}
        writes: list[cache.CacheWrite] = []
        for plan, read in misses:
            computed = plan.model.recommend(
                plan.user_id,
                PRECOMPUTED_TOP_N,
                history=histories.get(plan.user_id),
                exclude_seen=plan.exclude_seen,
                genre=plan.genre,
                strategy=plan.strategy,
            )
            served[plan.user_id] = self._served(
                plan, computed.cold_start, "model", _take(plan.model, computed.items, k, plan.genre)
            )
            state.metrics.cache_results["miss" if redis_up else "bypass"].inc()
            # A list computed from stale ratings (database down) is served but not cached.
            if redis_up and current:
                writes.append(
                    cache.CacheWrite(
                        plan.model.version,
                        plan.user_id,
                        plan.field,
                        computed.items,
                        computed.cold_start,
                        new_key=read is None or not read.exists,
                    )
                )
        if writes:
            ttl = int(state.settings.RECOMMENDATION_CACHE_TTL.total_seconds())
            try:
                state.redis.run(lambda client: cache.write_many(client, writes, ttl))
            except (RedisUnavailable, RedisError) as exc:
                logger.warning("cache write failed: %s", exc)
        return served

    @staticmethod
    def histories(state: AppState, user_ids: Sequence[int]) -> tuple[dict[int, History], bool]:
        """Users' current ratings, and False when the database could not be read (empty result)."""
        try:
            with state.session_factory() as session:
                return RatingRepository(session).histories(user_ids), True
        except DBAPIError as exc:
            logger.warning("database unreachable; recommending from the trained histories (%s)", exc.orig)
            return {}, False

    def similar(
        self, state: AppState, *, movie_id: int, k: int
    ) -> tuple[MovieFacts, LoadedModel, list[tuple[MovieFacts, Scored]]]:
        """Movies like `movie_id`.

        Raises:
            MovieNotFound: The model's catalog has no such movie.
        """
        model = state.models.require_live()
        facts = model.facts(movie_id)
        if facts is None:
            raise MovieNotFound(movie_id)
        return facts, model, _take(model, model.similar(movie_id, k), k, None)

    def from_titles(
        self, state: AppState, *, liked: Sequence[str], k: int
    ) -> tuple[LoadedModel, list[tuple[TitleMatch, MovieFacts | None]], list[tuple[MovieFacts, Scored]]]:
        """Fuzzy-match typed titles, then recommend for someone who likes the matched movies."""
        model = state.models.require_live()
        matches = model.match_titles(liked)
        movie_ids = [match.movie_id for match in matches if match.movie_id is not None]
        computed = model.recommend_for_liked(movie_ids, k, strategy=model.default_strategy)
        matched = [
            (match, model.facts(match.movie_id) if match.movie_id is not None else None) for match in matches
        ]
        return model, matched, _take(model, computed.items, k, None)

    def predict_rating(
        self, state: AppState, *, user_id: int, movie_id: int
    ) -> tuple[LoadedModel, RatingPrediction, float | None]:
        """The rating the user would give the movie, and their actual rating if they gave one.

        Raises:
            MovieNotFound: The model's catalog has no such movie.
        """
        model = state.models.require_live()
        if model.facts(movie_id) is None:
            raise MovieNotFound(movie_id)
        histories, _ = self.histories(state, [user_id])
        history = histories.get(user_id)
        current = next((value for movie, value in history or () if movie == movie_id), None)
        return model, model.predict_rating(user_id, movie_id, history=history), current

    def invalidate(self, state: AppState, user_id: int) -> None:
        """Drop a user's cached lists of every model version in memory (retried if Redis is down)."""
        versions = state.models.versions()
        try:
            state.redis.run(lambda client: cache.invalidate(client, versions, user_id))
        except (RedisUnavailable, RedisError):
            state.invalidations.add(user_id)

    def retry_invalidations(self, state: AppState) -> None:
        """Retry the invalidations Redis missed."""
        pending = state.invalidations.take()
        if not pending:
            return
        versions = state.models.versions()
        guard: RedisGuard = state.redis

        def invalidate_all(client: Redis) -> None:
            for user_id in pending:
                cache.invalidate(client, versions, user_id)

        try:
            guard.run(invalidate_all)
        except (RedisUnavailable, RedisError):
            for user_id in pending:
                state.invalidations.add(user_id)


recommendation = RecommendationService()
