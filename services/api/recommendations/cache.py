"""The recommendation cache in Redis, in the layout `services.live_model` defines.

A user's lists for a model version live in one hash, `recommendations_key(version, user_id)`; the
worker precomputes the field named after each strategy (`hybrid`, `svd`) as JSON
`[[movie_id, score, explanation], ...]`. The API reads those, and on a miss writes what it computed
in the same format, under the same field or one that names the request's variations:

    hybrid                     the top-N list, seen movies left out (what the worker writes)
    hybrid|genre=Comedy        the same restricted to a genre, when the top-N list had too few
    hybrid|seen                seen movies kept (`exclude_seen=false`)
    cold_start                 "1" when the lists were computed for a user the model does not know

A hash the API creates expires after `RECOMMENDATION_CACHE_TTL`; fields added to an existing hash
live as long as it does. A new rating deletes the user's hash, every field at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis

from services.api.recommendations.engine import Scored
from services.live_model import recommendations_key

COLD_START_FIELD = "cold_start"


def cache_field(strategy: str, *, genre: str | None = None, exclude_seen: bool = True) -> str:
    """The hash field of a list made with `strategy` (and a genre, and seen movies kept)."""
    field = strategy
    if genre is not None:
        field += f"|genre={genre}"
    if not exclude_seen:
        field += "|seen"
    return field


def encode(items: Sequence[Scored]) -> str:
    """A list in the cache's JSON format."""
    return json.dumps(
        [[item.movie_id, round(item.score, 6), item.explanation] for item in items], separators=(",", ":")
    )


def decode(raw: bytes | str) -> list[Scored]:
    """Inverse of `encode`."""
    return list(scored(json.loads(raw)))


def scored(entries: Iterable[Sequence[Any]]) -> Iterator[Scored]:
    """Cached `[movie_id, score, explanation]` entries as `Scored`, made only as they are consumed
    (a request usually takes 10 of the 100 stored)."""
    for movie_id, score, explanation in entries:
        yield Scored(int(movie_id), float(score), str(explanation))


@dataclass(frozen=True, slots=True)
class CacheRead:
    """What one user's hash holds for a request."""

    exists: bool
    lists: dict[str, list[Any]]
    """Field to its JSON entries, decoded but not converted (see `scored`)."""
    cold_start: bool


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """The fields one request needs from one user's hash."""

    version: str
    user_id: int
    fields: tuple[str, ...]

    @property
    def key(self) -> str:
        return recommendations_key(self.version, self.user_id)


def read_many(client: Redis, lookups: Sequence[CacheLookup]) -> list[CacheRead]:
    """Read several users' fields in one round trip."""
    pipe = client.pipeline(transaction=False)
    queue_reads(pipe, lookups)
    return parse_reads(lookups, pipe.execute())


def queue_reads(pipe: Any, lookups: Sequence[CacheLookup]) -> None:
    """Add the reads of `lookups` to a pipeline (blocking or asyncio)."""
    for lookup in lookups:
        pipe.exists(lookup.key)
        pipe.hmget(lookup.key, [*lookup.fields, COLD_START_FIELD])


def parse_reads(lookups: Sequence[CacheLookup], replies: Sequence[Any]) -> list[CacheRead]:
    """What `queue_reads` got back."""
    out = []
    for i, lookup in enumerate(lookups):
        exists, values = replies[2 * i], replies[2 * i + 1]
        lists = {field: json.loads(raw) for field, raw in zip(lookup.fields, values[:-1], strict=True) if raw}
        out.append(CacheRead(bool(exists), lists, values[-1] is not None))
    return out


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """A computed list to store."""

    version: str
    user_id: int
    field: str
    items: Sequence[Scored]
    cold_start: bool
    new_key: bool
    """The hash did not exist: give it the cache TTL (an existing hash keeps its own)."""


def write_many(client: Redis, writes: Sequence[CacheWrite], ttl_seconds: int) -> None:
    """Store computed lists in one round trip."""
    pipe = client.pipeline(transaction=False)
    for write in writes:
        key = recommendations_key(write.version, write.user_id)
        mapping: dict[str | bytes, bytes | float | int | str] = {write.field: encode(write.items)}
        if write.cold_start:
            mapping[COLD_START_FIELD] = "1"
        pipe.hset(key, mapping=mapping)
        if write.new_key:
            pipe.expire(key, ttl_seconds)
    pipe.execute()


def invalidate(client: Redis, versions: Sequence[str], user_id: int) -> None:
    """Forget every list of a user, for each model version given."""
    if versions:
        client.delete(*(recommendations_key(version, user_id) for version in versions))
