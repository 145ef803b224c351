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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from services.api.auth.ratelimit import COUNT_FUNCTION, Counter
from services.api.lua import Arg, LuaScript
from services.api.recommendations.engine import Scored
from services.live_model import decode_list, encode_list, recommendations_key

COLD_START_FIELD = "cold_start"

COUNT_AND_READ = LuaScript(
    COUNT_FUNCTION
    + """
-- ARGV[1] is the rate-limit counter's TTL, or '' to count nothing; when given, KEYS[1] and KEYS[2]
-- are the counters (see count_request). The other KEYS are users' hashes: for each in turn, ARGV
-- holds how many fields to read, then the fields. Returns the two counts (when counting), then
-- for each hash whether it exists and the values of its fields.
local out, first, a = {}, 1, 2
if ARGV[1] ~= '' then
  out[1], out[2] = count_request(KEYS[1], KEYS[2], ARGV[1])
  first = 3
end
for i = first, #KEYS do
  local n = tonumber(ARGV[a])
  out[#out + 1] = redis.call('EXISTS', KEYS[i])
  out[#out + 1] = redis.call('HMGET', KEYS[i], unpack(ARGV, a + 1, a + n))
  a = a + n + 1
end
return out
"""
)
"""Count a request against its key's rate limit and read users' lists: one command, one round trip."""


def cache_field(strategy: str, *, genre: str | None = None, exclude_seen: bool = True) -> str:
    """The hash field of a list made with `strategy` (and a genre, and seen movies kept)."""
    field = strategy
    if genre is not None:
        field += f"|genre={genre}"
    if not exclude_seen:
        field += "|seen"
    return field


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
    return _parse_reads(lookups, COUNT_AND_READ.run(client, *_arguments(lookups, None)))


async def acount_and_read(
    client: AsyncRedis, lookups: Sequence[CacheLookup], counter: Counter | None
) -> tuple[list[Any] | None, list[CacheRead]]:
    """Count a request (when `counter` is given) and read several users' fields, in one round trip.

    Returns:
        What `count_request` returned (None when not counting), and the reads.
    """
    replies = await COUNT_AND_READ.arun(client, *_arguments(lookups, counter))
    counts = None
    if counter is not None:
        counts, replies = replies[:2], replies[2:]
    return counts, _parse_reads(lookups, replies)


def _arguments(lookups: Sequence[CacheLookup], counter: Counter | None) -> tuple[list[str], list[Arg]]:
    keys: list[str] = []
    args: list[Arg] = [""]
    if counter is not None:
        keys += [counter.current_key, counter.previous_key]
        args[0] = counter.ttl_seconds
    for lookup in lookups:
        keys.append(lookup.key)
        args.append(len(lookup.fields) + 1)
        args += lookup.fields
        args.append(COLD_START_FIELD)
    return keys, args


def _parse_reads(lookups: Sequence[CacheLookup], replies: Sequence[Any]) -> list[CacheRead]:
    out = []
    for i, lookup in enumerate(lookups):
        exists, values = replies[2 * i], replies[2 * i + 1]
        lists = {
            field: decode_list(raw) for field, raw in zip(lookup.fields, values[:-1], strict=True) if raw
        }
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
        mapping: dict[str | bytes, bytes | float | int | str] = {write.field: encode_list(write.items)}
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
