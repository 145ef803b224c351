"""Precomputed top-N lists in Redis, the switch to a new model version, and the expiry of old keys.

For a version `v`, every user with ratings gets a hash `recommendations_key(v, user)` whose fields
are the strategies the model serves and whose values are compact JSON
`[[movie_id, score, explanation], ...]`, best first. Keys of a new version are written before the
live pointer moves, so readers never see a half-written version; afterwards the keys of every
other version get `OLD_VERSION_TTL_SECONDS` to live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from redis import Redis

from ml.artifact import ServingModel
from services.live_model import (
    OLD_VERSION_TTL_SECONDS,
    PRECOMPUTED_TOP_N,
    PREFIX,
    LiveModel,
    encode_list,
    publish_live_model,
    recommendations_key,
)

logger = logging.getLogger(__name__)

PIPELINE_USERS = 200
"""Users per Redis pipeline round trip (a few MB of JSON at 100 items x 7 strategies)."""
SCAN_BATCH = 1_000


@dataclass(frozen=True)
class PrecomputeReport:
    """What a precompute wrote."""

    users: int
    keys: int
    seconds: float

    @property
    def users_per_second(self) -> float:
        """Throughput."""
        return self.users / self.seconds if self.seconds else 0.0


def active_users(model: ServingModel) -> list[int]:
    """Users with at least one rating in the model's training data, sorted."""
    history = model.scorer.history
    counts = np.diff(history.matrix.indptr)
    return [int(u) for u in history.users.ids[counts > 0]]


def served_strategies(model: ServingModel, wanted: Sequence[str] = ()) -> list[str]:
    """The model's strategies, restricted to `wanted` when it is not empty."""
    return [s for s in model.strategies if not wanted or s in wanted]


def chunked(user_ids: Sequence[int], size: int) -> list[list[int]]:
    """`user_ids` in consecutive chunks of at most `size`."""
    return [list(user_ids[start : start + size]) for start in range(0, len(user_ids), size)]


def precompute_users(
    client: Redis,
    model: ServingModel,
    version: str,
    user_ids: Iterable[int],
    strategies: Sequence[str],
    *,
    top_n: int = PRECOMPUTED_TOP_N,
    on_batch: Callable[[int], None] | None = None,
) -> PrecomputeReport:
    """Write the top-N lists of `user_ids` for `version` (idempotent: a rerun overwrites them).

    Args:
        client: Redis holding the served keys.
        model: The version's serving model.
        version: The version string the keys carry.
        user_ids: Users to write.
        strategies: Hash fields to write, one list per strategy.
        top_n: List length.
        on_batch: Called with the number of users written after each pipeline round trip.

    Returns:
        Users and keys written, and the time it took.
    """
    started = time.perf_counter()
    users = 0
    pipe = client.pipeline(transaction=False)
    for user_id in user_ids:
        fields = {
            strategy: encode_list(model.recommend(user_id, top_n, strategy=strategy))
            for strategy in strategies
        }
        pipe.hset(recommendations_key(version, user_id), mapping=fields)  # type: ignore[arg-type]
        users += 1
        if users % PIPELINE_USERS == 0:
            pipe.execute()
            if on_batch:
                on_batch(PIPELINE_USERS)
    pending = len(pipe)
    if pending:
        pipe.execute()
        if on_batch:
            on_batch(pending)
    return PrecomputeReport(users=users, keys=users, seconds=time.perf_counter() - started)


@lru_cache(maxsize=2)
def cached_model(artifact: str) -> ServingModel:
    """A serving model loaded once per process (precompute chunks of one version share it)."""
    return ServingModel.load(Path(artifact))


def version_pattern(version: str) -> str:
    """SCAN pattern of a version's recommendation keys."""
    return f"{PREFIX}:recs:{version}:*"


def count_version_keys(client: Redis, version: str) -> int:
    """How many recommendation keys a version has."""
    return sum(1 for _ in client.scan_iter(match=version_pattern(version), count=SCAN_BATCH))


def expire_other_versions(client: Redis, keep: str, ttl: int = OLD_VERSION_TTL_SECONDS) -> int:
    """Give every recommendation key of another version than `keep` a TTL, if it has none yet.

    Keys that already expire keep their deadline, so repeated retrains do not keep old versions
    alive. Returns the number of keys given a TTL.
    """
    own = f"{PREFIX}:recs:{keep}:".encode()
    expired = 0
    batch: list[bytes] = []

    def flush() -> int:
        ttls = client.pipeline(transaction=False)
        for key in batch:
            ttls.ttl(key)
        pipe = client.pipeline(transaction=False)
        count = 0
        for key, remaining in zip(batch, ttls.execute(), strict=True):
            if remaining == -1:
                pipe.expire(key, ttl)
                count += 1
        pipe.execute()
        batch.clear()
        return count

    for key in client.scan_iter(match=f"{PREFIX}:recs:*", count=SCAN_BATCH):
        raw = key if isinstance(key, bytes) else str(key).encode()
        if raw.startswith(own):
            continue
        batch.append(raw)
        if len(batch) >= SCAN_BATCH:
            expired += flush()
    if batch:
        expired += flush()
    return expired


def switch_live_model(client: Redis, live: LiveModel, ttl: int = OLD_VERSION_TTL_SECONDS) -> int:
    """Publish `live` (atomic pointer switch + announcement), then let other versions' keys expire.

    Returns:
        The number of old keys given a TTL.
    """
    publish_live_model(client, live)
    expired = expire_other_versions(client, live.version, ttl)
    logger.info("serving %s; %d keys of other versions expire in %ds", live.version, expired, ttl)
    return expired
