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

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from services.api.lua import LuaScript
from services.api.redis_guard import RedisGuard, RedisUnavailable
from services.live_model import PREFIX

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60

COUNT_FUNCTION = """
-- Count one request in this minute's counter (which expires after ttl seconds); return the new
-- count and the previous minute's (false when it has none).
local function count_request(current_key, previous_key, ttl)
  local current = redis.call('INCR', current_key)
  if current == 1 then redis.call('EXPIRE', current_key, ttl) end
  return current, redis.call('GET', previous_key)
end
"""
"""Lua defining `count_request`, for scripts that count a request along with other work."""

COUNT = LuaScript(COUNT_FUNCTION + "return {count_request(KEYS[1], KEYS[2], ARGV[1])}")


def rate_limit_key(key_id: int, window: int) -> str:
    """Counter of one key's requests in one minute."""
    return f"{PREFIX}:ratelimit:{key_id}:{window}"


@dataclass(frozen=True, slots=True)
class Counter:
    """Where one request of a key is counted: the arguments of `count_request`."""

    current_key: str
    previous_key: str
    ttl_seconds: int = 2 * WINDOW_SECONDS


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

    async def ahit(self, key_id: int) -> RateLimitStatus | None:
        """Count one request of `key_id`, in one round trip on the asyncio client.

        Returns:
            The status for the response headers (`retry_after` set when over the limit); None when
            Redis is unavailable (fail open).
        """
        now = time.time()
        counter = self.counter(key_id, now)

        async def count(client: AsyncRedis) -> list[Any]:
            replies: list[Any] = await COUNT.arun(client, *_arguments(counter))
            return replies

        try:
            replies = await self.guard.arun(count)
        except (RedisUnavailable, RedisError) as exc:
            self.warn_unavailable(exc, now)
            return None
        return self.status_of(replies, now)

    @staticmethod
    def counter(key_id: int, now: float) -> Counter:
        """Where a request of `key_id` made at `now` is counted (for scripts built on `COUNT_FUNCTION`)."""
        window = int(now // WINDOW_SECONDS)
        return Counter(rate_limit_key(key_id, window), rate_limit_key(key_id, window - 1))

    def status_of(self, counts: Sequence[Any], now: float) -> RateLimitStatus:
        """The status from what `count_request` returned (this minute's count, the previous one's)."""
        current, previous = counts[0], counts[1]
        return self._status(int(current), int(previous or 0), now)

    def warn_unavailable(self, exc: BaseException, now: float) -> None:
        """Log (once a minute) that limits are not enforced."""
        if now - self._warned_at > 60:
            self._warned_at = now
            logger.warning("rate limits are not enforced: Redis is unavailable (%s)", exc)

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


def _arguments(counter: Counter) -> tuple[list[str], list[int]]:
    return [counter.current_key, counter.previous_key], [counter.ttl_seconds]
