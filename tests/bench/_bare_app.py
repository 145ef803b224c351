"""The ceiling of the API load benchmark: one Redis GET per request under the same uvicorn.

    uvicorn tests.bench._bare_app:create_app --factory --workers 1 --log-level warning

`BARE_REDIS_URL` names the Redis; the value read is `bench:bare`, which the benchmark sets.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from redis.asyncio import Redis

KEY = "bench:bare"


def create_app() -> FastAPI:
    client = Redis.from_url(os.environ["BARE_REDIS_URL"])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # As the API does after its startup: full collections no longer walk the libraries' objects
        # (without this, they put 40-50 ms pauses into this endpoint's p99).
        gc.collect()
        gc.freeze()
        yield
        await client.connection_pool.disconnect()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        await client.ping()
        return {"status": "ok"}

    @app.get("/bare/{user_id}")
    async def bare(user_id: int) -> Response:
        value = await client.get(KEY)
        return Response(value or b"[]", media_type="application/json")

    return app
