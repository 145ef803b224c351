import time

import pytest

from services.api.redis_guard import (
    RedisGuard,
    RedisUnavailable,
    create_async_redis_client,
    create_redis_client,
)
from tests.conftest import free_port


class TestRedisGuard:
    def test_a_dead_redis_opens_the_breaker_and_later_calls_fail_fast(self) -> None:
        # given
        url = f"redis://127.0.0.1:{free_port()}/0"
        states: list[bool] = []
        guard = RedisGuard(
            create_redis_client(url, timeout=0.2), retry_after=0.3, on_state_change=states.append
        )
        # when
        with pytest.raises(RedisUnavailable):
            guard.run(lambda client: client.get("x"))
        started = time.perf_counter()
        for _ in range(100):
            with pytest.raises(RedisUnavailable):
                guard.run(lambda client: client.get("x"))
        # then
        assert time.perf_counter() - started < 0.05
        assert not guard.available and states == [False]

    def test_it_probes_again_after_the_pause(self, api_redis_url: str) -> None:
        guard = RedisGuard(create_redis_client(api_redis_url, timeout=0.2), retry_after=0.05)
        guard._trip(ConnectionError("simulated"))
        with pytest.raises(RedisUnavailable):
            guard.run(lambda client: client.ping())
        time.sleep(0.06)
        assert guard.run(lambda client: client.ping())
        assert guard.available

    async def _ping(self, guard: RedisGuard) -> bool:
        return bool(await guard.arun(lambda client: client.ping()))

    def test_the_asyncio_client_shares_the_breaker(self) -> None:
        import asyncio

        url = f"redis://127.0.0.1:{free_port()}/0"
        guard = RedisGuard(create_redis_client(url, timeout=0.2), create_async_redis_client(url, timeout=0.2))
        with pytest.raises(RedisUnavailable):
            asyncio.run(self._ping(guard))
        assert not guard.available
        with pytest.raises(RedisUnavailable):
            guard.run(lambda client: client.ping())
