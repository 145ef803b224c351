"""A/B experiments: sticky bucket assignment, the running experiment in memory, exposure logging.

Assignment needs no state: a user's bucket is `sha256(f"{salt}:{user_id}")` reduced to 0-9999, and
buckets map to variants by cumulative weight (weight 30 = 3,000 buckets). Every instance computes
the same variant for the same user, before and after restarts, and two experiments with different
salts split users independently.

At most one experiment runs at a time, since every variant decides what the recommendation list
is. The running experiment is kept in memory (re-read every few seconds and whenever an instance
starts or stops one), so assigning costs no I/O.

Exposures (the first time a user is served a variant) are recorded off the request path: the
request appends to an in-process queue; a background flush deduplicates them in Redis (SET NX),
queues the new ones in a Redis list, and writes the list to `assignment` in batches with one
`INSERT ... ON CONFLICT DO NOTHING`. Without Redis the flush writes straight to the database.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db.models import Experiment, Variant
from services.api.errors import Conflict, NotFound, Unprocessable
from services.api.experiments.repository import ExperimentRepository
from services.api.experiments.schemas import ExperimentCreate, VariantConfig
from services.api.metrics import Metrics
from services.api.recommendations.engine import LIVE_ALIASES, ModelRegistry, Strategy
from services.api.redis_guard import RedisGuard, RedisUnavailable
from services.live_model import PREFIX

logger = logging.getLogger(__name__)

BUCKETS = 10_000
EXPERIMENTS_CHANNEL = f"{PREFIX}:experiments:updates"
"""An instance that starts or stops an experiment says so here; the others re-read at once."""
EXPOSURE_QUEUE_KEY = f"{PREFIX}:exposures"
EXPOSURE_MARKER_TTL_SECONDS = 7 * 24 * 3600
"""How long Redis remembers that a user was exposed; the table's primary key dedupes beyond that."""
EXPOSURE_BATCH = 1000
MAX_PENDING_EXPOSURES = 100_000


def bucket_of(salt: str, user_id: int) -> int:
    """The user's bucket (0-9999) in experiments salted with `salt`."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


class ExperimentNotFound(NotFound):
    title = "Experiment not found"

    def __init__(self, experiment_id: int) -> None:
        super().__init__(f"No experiment with id {experiment_id}.")


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """A variant as the assignment needs it."""

    id: int
    name: str
    upper_bucket: int
    """Users with a bucket below this (and at or above the previous variant's) get this variant."""
    config: VariantConfig

    @property
    def strategy(self) -> Strategy | None:
        """The ranking strategy it serves; None: the model's default."""
        if self.config.weights is not None:
            return {str(name): weight for name, weight in self.config.weights.items()}
        return self.config.strategy

    @property
    def model_version(self) -> str | None:
        """The version it serves; None: the live one."""
        version = self.config.model_version
        return None if version is None or version in LIVE_ALIASES else version


@dataclass(frozen=True, slots=True)
class RunningExperiment:
    """The running experiment, ready to assign users."""

    id: int
    name: str
    salt: str
    variants: tuple[VariantSpec, ...]

    @classmethod
    def of(cls, experiment: Experiment) -> RunningExperiment:
        specs = []
        upper = 0
        for variant in experiment.variants:
            upper += variant.weight * BUCKETS // 100
            specs.append(
                VariantSpec(variant.id, variant.name, upper, VariantConfig.model_validate(variant.config))
            )
        return cls(experiment.id, experiment.name, experiment.salt, tuple(specs))

    def variant_for(self, bucket: int) -> VariantSpec:
        for variant in self.variants:
            if bucket < variant.upper_bucket:
                return variant
        return self.variants[-1]  # unreachable while weights sum to 100

    def assign(self, user_id: int) -> Assignment:
        bucket = bucket_of(self.salt, user_id)
        return Assignment(self.id, self.name, self.variant_for(bucket), bucket)


@dataclass(frozen=True, slots=True)
class Assignment:
    """A user's variant in an experiment."""

    experiment_id: int
    experiment_name: str
    variant: VariantSpec
    bucket: int


class RunningExperiments:
    """The running experiment of this process's view of the database."""

    def __init__(self) -> None:
        self._current: RunningExperiment | None = None

    @property
    def current(self) -> RunningExperiment | None:
        return self._current

    def set(self, experiment: RunningExperiment | None) -> None:
        self._current = experiment

    def assign(self, user_id: int) -> Assignment | None:
        """The user's variant of the running experiment, None when none runs."""
        current = self._current
        return None if current is None else current.assign(user_id)

    def refresh(self, session_factory: sessionmaker[Session]) -> None:
        """Re-read the running experiment from the database."""
        with session_factory() as session:
            running = ExperimentRepository(session).list_running()
            self._current = RunningExperiment.of(running[0]) if running else None


@dataclass(frozen=True, slots=True)
class Exposure:
    """A user served a variant, waiting to be written to `assignment`."""

    experiment_id: int
    variant_id: int
    user_id: int
    bucket: int
    exposed_at: float

    def to_json(self) -> str:
        return json.dumps([self.experiment_id, self.variant_id, self.user_id, self.bucket, self.exposed_at])

    @classmethod
    def from_json(cls, raw: bytes | str) -> Exposure:
        experiment_id, variant_id, user_id, bucket, exposed_at = json.loads(raw)
        return cls(int(experiment_id), int(variant_id), int(user_id), int(bucket), float(exposed_at))


def exposure_marker_key(experiment_id: int, user_id: int) -> str:
    return f"{PREFIX}:exposed:{experiment_id}:{user_id}"


class ExposureLog:
    """Exposures recorded on the request path in memory, written to the database in batches.

    Args:
        guard: Redis behind its breaker (dedupe and the shared queue).
        session_factory: Sessions for the batched inserts.
        metrics: Exposure counters.
        clock: Seconds since the epoch (tests freeze it).
    """

    def __init__(
        self,
        guard: RedisGuard,
        session_factory: sessionmaker[Session],
        metrics: Metrics,
        *,
        clock: Callable[[], float] | None = None,
        remembered: int = 200_000,
    ) -> None:
        import time

        self.guard = guard
        self.session_factory = session_factory
        self.metrics = metrics
        self._clock = clock or time.time
        self._pending: deque[Exposure] = deque(maxlen=MAX_PENDING_EXPOSURES)
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def record(self, assignment: Assignment, user_id: int) -> None:
        """Count a list served in an experiment; queue the user's first exposure to it."""
        self.metrics.exposures.labels(assignment.experiment_name, assignment.variant.name).inc()
        key = (assignment.experiment_id, user_id)
        with self._lock:
            if key in self._seen:
                return
            self._seen[key] = None
            if len(self._seen) > self._remembered:
                self._seen.popitem(last=False)
            self._pending.append(
                Exposure(
                    assignment.experiment_id, assignment.variant.id, user_id, assignment.bucket, self._clock()
                )
            )

    def pending(self) -> int:
        """Exposures recorded but not yet handed to Redis or the database."""
        return len(self._pending)

    def flush(self) -> int:
        """Hand pending exposures to Redis (or the database) and write Redis's queue to the database.

        Returns:
            Rows inserted into `assignment`.
        """
        with self._flush_lock:
            with self._lock:
                batch = list(self._pending)
                self._pending.clear()
            written = 0
            if batch:
                try:
                    self.guard.run(lambda client: self._enqueue(client, batch))
                except (RedisUnavailable, RedisError):
                    written += self._write_or_requeue(batch)
            written += self._drain_queue()
            return written

    def _enqueue(self, client: Redis, batch: Sequence[Exposure]) -> None:
        pipe = client.pipeline(transaction=False)
        for exposure in batch:
            pipe.set(
                exposure_marker_key(exposure.experiment_id, exposure.user_id),
                exposure.variant_id,
                nx=True,
                ex=EXPOSURE_MARKER_TTL_SECONDS,
            )
        first = [exposure for exposure, new in zip(batch, pipe.execute(), strict=True) if new]
        if first:
            client.rpush(EXPOSURE_QUEUE_KEY, *(exposure.to_json() for exposure in first))

    def _drain_queue(self) -> int:
        written = 0
        for _ in range(100):  # at most 100 batches per flush; the next flush continues
            try:
                raw = self.guard.run(lambda client: client.lpop(EXPOSURE_QUEUE_KEY, EXPOSURE_BATCH))
            except (RedisUnavailable, RedisError):
                return written
            if not raw:
                return written
            items = list(raw)
            exposures = [Exposure.from_json(item) for item in items]
            try:
                written += self._write(exposures)
            except DBAPIError as exc:
                logger.warning("cannot write %d exposures (%s); requeued", len(exposures), exc.orig)
                self._requeue(items)
                return written
        return written

    def _requeue(self, items: list[bytes]) -> None:
        try:
            self.guard.run(lambda client: client.lpush(EXPOSURE_QUEUE_KEY, *reversed(items)))
        except (RedisUnavailable, RedisError):
            logger.error("lost %d exposures: neither the database nor Redis is reachable", len(items))

    def _write_or_requeue(self, batch: Sequence[Exposure]) -> int:
        try:
            return self._write(batch)
        except DBAPIError as exc:
            logger.warning("cannot write %d exposures (%s); keeping them in memory", len(batch), exc.orig)
            with self._lock:
                self._pending.extendleft(reversed(batch))
            return 0

    def _write(self, exposures: Sequence[Exposure]) -> int:
        with self.session_factory.begin() as session:
            inserted = ExperimentRepository(session).insert_exposures(
                experiment_ids=[e.experiment_id for e in exposures],
                user_ids=[e.user_id for e in exposures],
                variant_ids=[e.variant_id for e in exposures],
                buckets=[e.bucket for e in exposures],
                exposed_at=[datetime.fromtimestamp(e.exposed_at, UTC) for e in exposures],
            )
        self.metrics.exposures_logged.inc(inserted)
        return inserted


def announce_change(client: Redis) -> None:
    """Tell the other instances to re-read the running experiment."""
    client.publish(EXPERIMENTS_CHANNEL, "changed")


class ExperimentService:
    def get(self, session: Session, experiment_id: int) -> Experiment:
        """The experiment, or ExperimentNotFound."""
        experiment = ExperimentRepository(session).get_by_id(experiment_id)
        if experiment is None:
            raise ExperimentNotFound(experiment_id)
        return experiment

    def list_experiments(
        self, session: Session, *, status: str | None, page: int, page_size: int
    ) -> tuple[Sequence[Experiment], int]:
        repository = ExperimentRepository(session)
        items = repository.list_experiments(status=status, offset=(page - 1) * page_size, limit=page_size)
        return items, repository.count(status=status)

    def create(self, session: Session, *, payload: ExperimentCreate, models: ModelRegistry) -> Experiment:
        """Create a draft experiment.

        Raises:
            Conflict: The name is taken.
            Unprocessable: A variant names a model version that does not exist, or a strategy the
                live model cannot serve.
        """
        repository = ExperimentRepository(session)
        if repository.get_by_name(payload.name) is not None:
            raise Conflict(f"An experiment named {payload.name!r} already exists.")
        for variant in payload.variants:
            self._check_config(variant.name, variant.config, models)
        experiment = Experiment(
            name=payload.name,
            description=payload.description,
            salt=payload.salt or secrets.token_hex(8),
            status="draft",
            variants=[
                Variant(
                    name=variant.name,
                    weight=variant.weight,
                    is_control=variant.is_control,
                    config=variant.config.model_dump(exclude_none=True),
                )
                for variant in payload.variants
            ],
        )
        session.add(experiment)
        session.flush()
        session.refresh(experiment)
        return experiment

    @staticmethod
    def _check_config(name: str, config: VariantConfig, models: ModelRegistry) -> None:
        version = config.model_version
        if version is not None and not models.exists(version):
            raise Unprocessable(f"Variant {name!r} serves model version {version!r}, which does not exist.")
        live = models.live
        strategy: Strategy | None = (
            {str(component): weight for component, weight in config.weights.items()}
            if config.weights is not None
            else config.strategy
        )
        serves_live = version is None or version in LIVE_ALIASES
        if live is not None and strategy is not None and serves_live and not live.serves(strategy):
            raise Unprocessable(
                f"Variant {name!r}: the live model cannot serve {strategy!r}; it serves {', '.join(live.strategies)}."
            )

    def start(self, session: Session, experiment_id: int) -> Experiment:
        """Start a draft experiment.

        Raises:
            ExperimentNotFound: No such experiment.
            Conflict: It is not a draft, or another experiment is running.
        """
        repository = ExperimentRepository(session)
        repository.lock_starts()
        experiment = repository.get_by_id_for_update(experiment_id)
        if experiment is None:
            raise ExperimentNotFound(experiment_id)
        if experiment.status != "draft":
            raise Conflict(f"Experiment {experiment.name!r} is {experiment.status}; only a draft can start.")
        running = [other for other in repository.list_running() if other.id != experiment.id]
        if running:
            raise Conflict(f"Experiment {running[0].name!r} is running; stop it first (one runs at a time).")
        experiment.status = "running"
        experiment.started_at = datetime.now(UTC)
        session.flush()
        return experiment

    def stop(self, session: Session, experiment_id: int) -> Experiment:
        """Stop a running (or cancel a draft) experiment.

        Raises:
            ExperimentNotFound: No such experiment.
            Conflict: It is already stopped.
        """
        experiment = ExperimentRepository(session).get_by_id_for_update(experiment_id)
        if experiment is None:
            raise ExperimentNotFound(experiment_id)
        if experiment.status == "stopped":
            raise Conflict(f"Experiment {experiment.name!r} is already stopped.")
        experiment.status = "stopped"
        experiment.stopped_at = datetime.now(UTC)
        session.flush()
        return experiment

    def resolve(
        self, session: Session, moments: Sequence[datetime], user_ids: Sequence[int]
    ) -> list[tuple[int, int] | None]:
        """The (experiment id, variant id) each user was served at each moment, if one was running."""
        if not moments:
            return []
        experiments = [
            (e, RunningExperiment.of(e))
            for e in ExperimentRepository(session).list_active_between(min(moments), max(moments))
        ]
        out: list[tuple[int, int] | None] = []
        for moment, user_id in zip(moments, user_ids, strict=True):
            found: tuple[int, int] | None = None
            for experiment, running in experiments:
                assert experiment.started_at is not None
                if experiment.started_at <= moment and (
                    experiment.stopped_at is None or moment < experiment.stopped_at
                ):
                    found = (running.id, running.assign(user_id).variant.id)
                    break
            out.append(found)
        return out


experiment = ExperimentService()


def experiment_snapshot(experiment_row: Experiment) -> RunningExperiment | None:
    """The in-memory form of an experiment if it runs, else None."""
    return RunningExperiment.of(experiment_row) if experiment_row.status == "running" else None
