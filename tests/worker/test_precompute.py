"""Precompute helpers: encoding, chunking, expiry of the other versions' keys, the live switch."""

from __future__ import annotations

import redis

from ml.artifact import Recommendation
from services.live_model import LiveModel, decode_list, encode_list, read_live_model, recommendations_key
from services.worker.precompute import (
    chunked,
    count_version_keys,
    expire_other_versions,
    switch_live_model,
)


class TestChunked:
    def test_splits_in_order(self) -> None:
        assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
        assert chunked([], 3) == []


class TestListCodec:
    def test_reads_compact_lists(self) -> None:
        assert decode_list('[[5,4.5,"because you rated Heat 5 stars"]]') == [
            [5, 4.5, "because you rated Heat 5 stars"]
        ]

    def test_round_trips_scores_to_five_decimals_and_unicode(self) -> None:
        item = Recommendation(movie_id=7, score=4.1234567, explanation="because you rated Amélie 5 stars")
        raw = encode_list([item])
        assert raw == '[[7,4.12346,"because you rated Amélie 5 stars"]]'.encode()
        assert decode_list(raw) == [[7, 4.12346, "because you rated Amélie 5 stars"]]


class TestSwitchLiveModel:
    def test_publishes_and_expires_other_versions_once(self, redis_client: redis.Redis) -> None:
        # given two old versions, one already expiring, and the new one
        for version in ("v1", "v2", "v3"):
            for user in range(5):
                redis_client.hset(recommendations_key(version, user), "hybrid", "[]")
        redis_client.expire(recommendations_key("v1", 0), 100)
        updates = redis_client.pubsub()
        updates.subscribe("movierec:model:updates")
        # when
        expired = switch_live_model(redis_client, LiveModel(version="v3", artifact_dir="/x"), ttl=500)
        # then
        assert expired == 9
        live = read_live_model(redis_client)
        assert live is not None and live.version == "v3"
        assert redis_client.ttl(recommendations_key("v1", 0)) <= 100
        assert 400 < redis_client.ttl(recommendations_key("v2", 4)) <= 500
        assert redis_client.ttl(recommendations_key("v3", 0)) == -1
        assert count_version_keys(redis_client, "v3") == 5
        messages = [updates.get_message(timeout=1) for _ in range(2)]
        assert any(m and m["type"] == "message" and m["data"] == b"v3" for m in messages)
        updates.close()

    def test_repeated_switches_do_not_extend_old_keys(self, redis_client: redis.Redis) -> None:
        redis_client.hset(recommendations_key("v1", 1), "hybrid", "[]")
        expire_other_versions(redis_client, "v2", ttl=50)
        assert expire_other_versions(redis_client, "v3", ttl=5000) == 0
        assert redis_client.ttl(recommendations_key("v1", 1)) <= 50
