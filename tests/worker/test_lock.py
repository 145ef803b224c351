"""The retrain lock: one holder, expiry, owner-only release, takeover by a redelivered task."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis

from services.live_model import RETRAIN_LOCK_KEY
from services.worker.lock import LockLost, RetrainLock, lock_holder

TTL = timedelta(seconds=1)


class TestRetrainLock:
    def test_second_owner_cannot_take_a_held_lock(self, redis_client: redis.Redis) -> None:
        first, second = RetrainLock(redis_client, TTL, owner="a"), RetrainLock(redis_client, TTL, owner="b")
        assert first.acquire()
        assert not second.acquire()
        assert lock_holder(redis_client) == first.token

    def test_only_the_owner_releases(self, redis_client: redis.Redis) -> None:
        first, second = RetrainLock(redis_client, TTL, owner="a"), RetrainLock(redis_client, TTL, owner="b")
        first.acquire()
        assert not second.release()
        assert first.release()
        assert not redis_client.exists(RETRAIN_LOCK_KEY)

    def test_expires_without_heartbeat_and_is_lost(self, redis_client: redis.Redis) -> None:
        first = RetrainLock(redis_client, timedelta(milliseconds=200), owner="a")
        first.acquire()
        time.sleep(0.3)
        second = RetrainLock(redis_client, TTL, owner="b")
        assert second.acquire()
        with pytest.raises(LockLost):
            first.ensure_held()
        assert not first.release() and lock_holder(redis_client) == second.token

    def test_heartbeat_keeps_it_beyond_its_ttl(self, redis_client: redis.Redis) -> None:
        lock = RetrainLock(redis_client, timedelta(milliseconds=300), owner="a")
        lock.acquire()
        with lock.heartbeat():
            time.sleep(0.8)
            assert lock_holder(redis_client) == lock.token
        lock.ensure_held()

    def test_redelivered_task_takes_over_its_own_lock(self, redis_client: redis.Redis) -> None:
        dead = RetrainLock(redis_client, TTL, owner="task-1")
        dead.acquire()
        again = RetrainLock(redis_client, TTL, owner="task-1")
        assert again.acquire()
        assert lock_holder(redis_client) == again.token
        assert not dead.release()

    def test_from_token_acts_for_the_holder(self, redis_client: redis.Redis) -> None:
        lock = RetrainLock(redis_client, TTL, owner="task-1")
        lock.acquire()
        assert RetrainLock.from_token(redis_client, TTL, lock.token).release()
