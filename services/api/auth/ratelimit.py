"""Per-key rate limits in Redis: a sliding window over two one-minute counters, one round trip.

The estimate is `previous * (remaining share of the minute) + current`, the usual approximation of
a true sliding window (Cloudflare's). If Redis is unavailable the limiter fails open: requests go
through and the outage is logged, since refusing every request would turn a cache outage into an
API outage.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from services.api.redis_guard import RedisGuard, RedisUnavailable
from services.live_model import PREFIX

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
REPLIES = 3
"""Replies the commands of `RateLimiter.queue` add to a pipeline."""


def rate_limit_key(key_id: int, window: int) -> str:
    """Counter of one key's requests in one minute."""
    return f"{PREFIX}:ratelimit:{key_id}:{window}"


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """What the `X-RateLimit-*` headers say."""

    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int | None = None
    """Set when the request is over the limit: seconds until one more request fits."""

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


def seconds_until_allowed(limit: int, previous: int, current: int, elapsed: float) -> int:
    """Seconds until one more request fits under `limit`, given the two counters."""
    window = float(WINDOW_SECONDS)
    # Still in this window: the previous minute's weight shrinks as time passes.
    if previous > 0:
        wait = (window - elapsed) - window * (limit - current - 1) / previous
        if wait <= window - elapsed and current + 1 <= limit:
            return max(1, math.ceil(wait))
    # In the next window this window's count becomes the previous one.
    if current <= 0:
        return max(1, math.ceil(window - elapsed))
    into_next = max(0.0, window - window * (limit - 1) / current)
    return max(1, math.ceil(window - elapsed + into_next))


class RateLimiter:
    """Counts requests per key in Redis.

    Args:
        guard: Redis behind its circuit breaker.
        limit: Requests per key per minute.
    """

    def __init__(self, guard: RedisGuard, limit: int) -> None:
        self.guard = guard
        self.limit = limit
        self._warned_at = 0.0

    def hit(self, key_id: int) -> RateLimitStatus | None:
        """Count one request of `key_id` (blocking client).

        Returns:
            The status for the response headers (`retry_after` set when over the limit); None when
            Redis is unavailable (fail open).
        """
        now = time.time()

        def count(client: Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            self.queue(pipe, key_id, now)
            return pipe.execute()

        try:
            replies = self.guard.run(count)
        except (RedisUnavailable, RedisError) as exc:
            self.warn_unavailable(exc, now)
            return None
        return self.status_of(replies, now)

    async def ahit(self, key_id: int) -> RateLimitStatus | None:
        """`hit` on the asyncio client: the same single round trip, without leaving the event loop."""
        now = time.time()

        async def count(client: AsyncRedis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                self.queue(pipe, key_id, now)
                return await pipe.execute()

        try:
            replies = await self.guard.arun(count)
        except (RedisUnavailable, RedisError) as exc:
            self.warn_unavailable(exc, now)
            return None
        return self.status_of(replies, now)

    def queue(self, pipe: Any, key_id: int, now: float) -> None:
        """Add the `REPLIES` commands that count one request to a pipeline (so a caller can send them
        along with its own commands, in one round trip)."""
        current_key, previous_key = self._keys(key_id, now)
        pipe.incr(current_key)
        pipe.expire(current_key, 2 * WINDOW_SECONDS)
        pipe.get(previous_key)

    def status_of(self, replies: Sequence[Any], now: float) -> RateLimitStatus:
        """The status from the replies to `queue`'s commands."""
        current, _, previous = replies[:REPLIES]
        return self._status(int(current), int(previous or 0), now)

    def warn_unavailable(self, exc: BaseException, now: float) -> None:
        """Log (once a minute) that limits are not enforced."""
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning("rate limits are not enforced: Redis is unavailable (%s)", exc)

    @staticmethod
    def _keys(key_id: int, now: float) -> tuple[str, str]:
        window = int(now // WINDOW_SECONDS)
        return rate_limit_key(key_id, window), rate_limit_key(key_id, window - 1)

    def _status(self, current: int, previous: int, now: float) -> RateLimitStatus:
        elapsed = now % WINDOW_SECONDS
        estimate = previous * (WINDOW_SECONDS - elapsed) / WINDOW_SECONDS + current
        retry_after = None
        if estimate > self.limit:
            retry_after = seconds_until_allowed(self.limit, previous, current, elapsed)
        return RateLimitStatus(
            limit=self.limit,
            remaining=max(0, math.floor(self.limit - estimate)),
            reset_seconds=max(1, math.ceil(WINDOW_SECONDS - elapsed)),
            retry_after=retry_after,
        )
