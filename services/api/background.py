"""Work an API process does off the request path, in two daemon threads started by the lifespan.

- The watcher listens on the model, experiment and key-revocation channels, and also polls the
  live-model pointer and the running experiment every few seconds (a missed message costs at most
  one interval). A new model is loaded in this thread and swapped in with one assignment.
- The flusher writes A/B exposures in batches, retries cache invalidations Redis missed, records
  when keys were last used, and deletes expired idempotency keys.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from services.api.auth.repository import ApiKeyRepository
from services.api.auth.service import REVOCATIONS_CHANNEL
from services.api.experiments.service import EXPERIMENTS_CHANNEL
from services.api.idempotency import IdempotencyRepository
from services.api.recommendations.service import recommendation as recommendation_service
from services.api.redis_guard import RedisUnavailable
from services.api.state import AppState
from services.live_model import MODEL_UPDATES_CHANNEL, read_live_model

logger = logging.getLogger(__name__)

KEY_USAGE_INTERVAL_SECONDS = 60.0
IDEMPOTENCY_CLEANUP_INTERVAL_SECONDS = 3600.0


def sync_live_model(state: AppState) -> bool:
    """Load and serve the version the live pointer names, if it is not served yet.

    Returns:
        True if the served model changed.
    """
    try:
        pointer = state.redis.run(read_live_model)
    except (RedisUnavailable, RedisError) as exc:
        logger.debug("cannot read the live-model pointer: %s", exc)
        return False
    if pointer is None:
        return False
    live = state.models.live
    if live is not None and live.version == pointer.version:
        return False
    try:
        changed = state.models.set_live(pointer)
    except Exception:  # logged by the registry; the old model keeps serving
        state.metrics.model_loads.labels("failed").inc()
        return False
    if changed:
        state.metrics.model_loads.labels("loaded").inc()
        state.models.require_live().title_index()  # built here rather than on the first from-titles request
    return changed


def refresh_experiments(state: AppState) -> None:
    """Re-read the running experiment; keep the last known one if the database is unreachable."""
    try:
        state.experiments.refresh(state.session_factory)
    except DBAPIError as exc:
        logger.warning("cannot refresh the running experiment: %s", exc.orig)


def record_key_usage(state: AppState) -> None:
    """Write when keys were last used (one UPDATE for all keys used since the last call)."""
    used = state.keys.take_used()
    if not used:
        return
    try:
        with state.session_factory.begin() as session:
            ApiKeyRepository(session).touch(used)
    except DBAPIError as exc:
        logger.debug("cannot record key usage: %s", exc.orig)


def delete_expired_idempotency_keys(state: AppState) -> None:
    try:
        with state.session_factory.begin() as session:
            deleted = IdempotencyRepository(session).delete_expired(state.settings.API_IDEMPOTENCY_TTL)
        if deleted:
            logger.info("deleted %d expired idempotency keys", deleted)
    except DBAPIError as exc:
        logger.debug("cannot delete expired idempotency keys: %s", exc.orig)


class _Every:
    """True once per `interval` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


class BackgroundWorkers:
    """The watcher and flusher threads of one API process.

    Args:
        state: The process's state.
        pubsub_client: A Redis client for the subscription (blocking reads; not the request client).
    """

    def __init__(self, state: AppState, pubsub_client: Redis) -> None:
        self.state = state
        self.pubsub_client = pubsub_client
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, target in (("movierec-api-watcher", self._watch), ("movierec-api-flusher", self._flush)):
            thread = threading.Thread(target=self._guarded(target), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.pubsub_client.close()

    def _guarded(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    loop()
                except Exception:
                    logger.exception("background loop %s failed; restarting it", loop.__name__)
                    self._stop.wait(1.0)

        return run

    def _dispatch(self, channel: str, data: str) -> None:
        if channel == MODEL_UPDATES_CHANNEL:
            sync_live_model(self.state)
        elif channel == EXPERIMENTS_CHANNEL:
            refresh_experiments(self.state)
        elif channel == REVOCATIONS_CHANNEL:
            self.state.keys.forget(data)

    def _watch(self) -> None:
        settings = self.state.settings
        model_poll = _Every(settings.API_MODEL_POLL_INTERVAL.total_seconds())
        experiment_poll = _Every(settings.API_EXPERIMENT_REFRESH_INTERVAL.total_seconds())
        pubsub = None
        try:
            while not self._stop.is_set():
                if pubsub is None:
                    try:
                        pubsub = self.pubsub_client.pubsub(ignore_subscribe_messages=True)
                        pubsub.subscribe(MODEL_UPDATES_CHANNEL, EXPERIMENTS_CHANNEL, REVOCATIONS_CHANNEL)
                        # Anything published while we were not subscribed: catch up now.
                        sync_live_model(self.state)
                        refresh_experiments(self.state)
                    except (RedisError, OSError) as exc:
                        logger.debug("cannot subscribe to updates: %s", exc)
                        pubsub = None
                        self._stop.wait(1.0)
                if pubsub is not None:
                    try:
                        message = pubsub.get_message(timeout=1.0)
                    except (RedisError, OSError) as exc:
                        logger.debug("lost the update subscription: %s", exc)
                        pubsub.close()
                        pubsub = None
                        message = None
                    if message is not None and message.get("type") == "message":
                        channel, data = message["channel"], message["data"]
                        self._dispatch(
                            channel.decode() if isinstance(channel, bytes) else str(channel),
                            data.decode() if isinstance(data, bytes) else str(data),
                        )
                if model_poll.due():
                    sync_live_model(self.state)
                if experiment_poll.due():
                    refresh_experiments(self.state)
        finally:
            if pubsub is not None:
                pubsub.close()

    def _flush(self) -> None:
        settings = self.state.settings
        interval = settings.API_EXPOSURE_FLUSH_INTERVAL.total_seconds()
        key_usage = _Every(KEY_USAGE_INTERVAL_SECONDS)
        cleanup = _Every(IDEMPOTENCY_CLEANUP_INTERVAL_SECONDS)
        while not self._stop.wait(interval):
            self.state.exposures.flush()
            recommendation_service.retry_invalidations(self.state)
            if key_usage.due():
                record_key_usage(self.state)
            if cleanup.due():
                delete_expired_idempotency_keys(self.state)
        self.state.exposures.flush()
        record_key_usage(self.state)
