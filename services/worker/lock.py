"""One retrain at a time: a Redis lock with an owner token, an expiry and a heartbeat.

The lock value is `<owner>/<random>`. Only the holder of the exact value may refresh or release it,
so a worker that was presumed dead cannot release its successor's lock. A killed worker stops
refreshing, and its lock expires after `ttl`. A Celery task whose message is redelivered after its
first attempt died (same task id, hence same owner) takes the lock over at once instead of waiting.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from redis import Redis

from services.live_model import RETRAIN_LOCK_KEY

logger = logging.getLogger(__name__)

_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == false or string.sub(current, 1, string.len(ARGV[2])) == ARGV[2] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
    return 1
end
return 0
"""
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockLost(RuntimeError):
    """The lock expired or was taken over while we worked; our result must not be published."""


def refresh_token(client: Redis, token: str, ttl: timedelta, key: str = RETRAIN_LOCK_KEY) -> bool:
    """Push back the expiry of the lock if `token` still holds it."""
    return bool(client.eval(_REFRESH, 1, key, token, int(ttl.total_seconds() * 1000)))


def release_token(client: Redis, token: str, key: str = RETRAIN_LOCK_KEY) -> bool:
    """Delete the lock if `token` still holds it; returns whether it did."""
    return bool(client.eval(_RELEASE, 1, key, token))


def lock_holder(client: Redis, key: str = RETRAIN_LOCK_KEY) -> str | None:
    """The token holding the lock, or None."""
    raw = client.get(key)
    return raw.decode() if isinstance(raw, bytes) else raw


class RetrainLock:
    """The retrain lock as held by one owner (a Celery task id, or the CLI process)."""

    def __init__(
        self,
        client: Redis,
        ttl: timedelta,
        *,
        owner: str,
        key: str = RETRAIN_LOCK_KEY,
        token: str | None = None,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.key = key
        self.owner = owner
        self.token = token or f"{owner}/{uuid.uuid4().hex}"
        self._lost = threading.Event()

    @classmethod
    def from_token(
        cls, client: Redis, ttl: timedelta, token: str, key: str = RETRAIN_LOCK_KEY
    ) -> RetrainLock:
        """The lock as held by `token`, for the tasks a retrain hands its work to."""
        return cls(client, ttl, owner=token.rsplit("/", 1)[0], key=key, token=token)

    @property
    def ttl_ms(self) -> int:
        return int(self.ttl.total_seconds() * 1000)

    def acquire(self) -> bool:
        """Take the lock if it is free or held by an earlier attempt of the same owner."""
        acquired = bool(self.client.eval(_ACQUIRE, 1, self.key, self.token, f"{self.owner}/", self.ttl_ms))
        if acquired:
            self._lost.clear()
        return acquired

    def refresh(self) -> bool:
        """Push back the expiry; False (and the lock counts as lost) if we no longer hold it."""
        if refresh_token(self.client, self.token, self.ttl, self.key):
            return True
        self._lost.set()
        return False

    def release(self) -> bool:
        """Release the lock if we still hold it."""
        return release_token(self.client, self.token, self.key)

    def ensure_held(self) -> None:
        """Raise `LockLost` unless we still hold the lock (checked before anything is published)."""
        if self._lost.is_set() or not self.refresh():
            raise LockLost(f"lost the retrain lock {self.key} (token {self.token})")

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        """Refresh the lock every third of its TTL from a background thread while the block runs."""
        stop = threading.Event()
        interval = max(self.ttl.total_seconds() / 3, 0.05)

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    if not self.refresh():
                        logger.error("retrain lock lost: key=%s token=%s", self.key, self.token)
                        return
                except Exception:  # a Redis hiccup: keep trying until the lock would expire
                    logger.warning("could not refresh the retrain lock", exc_info=True)

        thread = threading.Thread(target=beat, name="retrain-lock-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
