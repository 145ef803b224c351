"""Lua scripts run in Redis: several commands in one round trip, atomically, with no pipeline to
assemble and parse in Python on the request path."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError

Arg = str | int | float | bytes


class LuaScript:
    """A script called by its SHA1 (`EVALSHA`); sent in full once per server, when it does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def run(self, client: Redis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run on the blocking client."""
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or new server: EVAL also caches it there
            return client.eval(self.source, len(keys), *keys, *args)

    async def arun(self, client: AsyncRedis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run on the asyncio client."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
