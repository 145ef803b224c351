"""Redis on the request path: short timeouts and a circuit breaker, so a dead Redis costs nothing.

Every call goes through `RedisGuard.run` (blocking client, from worker threads) or
`RedisGuard.arun` (asyncio client, from the event loop: the cache-hit path never leaves it). A
connection error or timeout opens the breaker: for `retry_after` seconds calls fail at once with
`RedisUnavailable` instead of waiting for a timeout, then one call is let through to probe; its
success closes the breaker. Callers treat `RedisUnavailable` as "no cache", "no rate limit" (fail
open) or "queue elsewhere".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What an unreachable or stalled Redis raises (asyncio timeouts are the builtin TimeoutError).
_OUTAGES = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


class RedisUnavailable(Exception):
    """Redis did not answer, or the breaker is open."""


def create_redis_client(url: str, *, timeout: float, max_connections: int = 64) -> Redis:
    """A blocking client that gives up fast: no retries, `timeout` seconds to connect and to read."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
        max_connections=max_connections,
        health_check_interval=0,
    )


def create_async_redis_client(url: str, *, timeout: float, max_connections: int = 64) -> AsyncRedis:
    """The asyncio twin of `create_redis_client`."""
    return AsyncRedis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(NoBackoff(), 0),
        retry_on_timeout=False,
        max_connections=max_connections,
        health_check_interval=0,
    )


class RedisGuard:
    """A Redis server behind a circuit breaker, through a blocking and an asyncio client.

    Args:
        client: The blocking client (built by `create_redis_client`).
        async_client: The asyncio client (built by `create_async_redis_client`).
        retry_after: Seconds the breaker stays open after a failure.
        on_state_change: Called with True when Redis becomes available, False when it fails.
    """

    def __init__(
        self,
        client: Redis,
        async_client: AsyncRedis | None = None,
        *,
        retry_after: float = 5.0,
        on_state_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.retry_after = retry_after
        self._on_state_change = on_state_change
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._available = True
        self._probing = False

    @property
    def available(self) -> bool:
        """False while the breaker is open."""
        return self._available

    def run(self, operation: Callable[[Redis], T]) -> T:
        """Run `operation(client)`, or raise `RedisUnavailable` without touching the network.

        Raises:
            RedisUnavailable: The breaker is open, or the call failed to connect or timed out.
            RedisError: Any other Redis error (a command error is a bug, not an outage).
        """
        self._before_call()
        try:
            result = operation(self.client)
        except _OUTAGES as exc:
            self._trip(exc)
            raise RedisUnavailable(str(exc)) from exc
        except RedisError:
            self._release_probe()
            raise
        self._after_success()
        return result

    async def arun(self, operation: Callable[[AsyncRedis], Awaitable[T]]) -> T:
        """`run` for the asyncio client."""
        if self.async_client is None:
            raise RedisUnavailable("no asyncio client")
        self._before_call()
        try:
            result = await operation(self.async_client)
        except _OUTAGES as exc:
            self._trip(exc)
            raise RedisUnavailable(str(exc)) from exc
        except RedisError:
            self._release_probe()
            raise
        self._after_success()
        return result

    def _before_call(self) -> None:
        if self._available:
            return
        now = time.monotonic()
        with self._lock:
            if now < self._open_until or self._probing:
                raise RedisUnavailable("Redis is unavailable (circuit open)")
            self._probing = True  # this caller probes; the others keep failing fast

    def _after_success(self) -> None:
        if self._available:
            return
        with self._lock:
            self._available = True
            self._probing = False
        logger.info("Redis is available again")
        if self._on_state_change is not None:
            self._on_state_change(True)

    def _trip(self, exc: BaseException) -> None:
        with self._lock:
            was_available = self._available
            self._available = False
            self._probing = False
            self._open_until = time.monotonic() + self.retry_after
        if was_available:
            logger.warning("Redis unavailable (%s); skipping it for %.1fs at a time", exc, self.retry_after)
            if self._on_state_change is not None:
                self._on_state_change(False)

    def _release_probe(self) -> None:
        with self._lock:
            self._probing = False

    def ping(self) -> bool:
        """Whether Redis answers (goes through the breaker)."""
        try:
            return bool(self.run(lambda client: client.ping()))
        except (RedisUnavailable, RedisError):
            return False

    def close(self) -> None:
        """Close the blocking client's connections."""
        self.client.close()

    async def aclose(self) -> None:
        """Close the asyncio client's connections."""
        if self.async_client is not None:
            await self.async_client.aclose()  # type: ignore[attr-defined]
