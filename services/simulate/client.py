"""An asynchronous client of the REST API that behaves: bounded concurrency, honours rate limits.

When the API answers 429 (or 503 with `Retry-After`), every request of the replay pauses until the
time it names, then the request is retried: the replay slows down to what the API allows instead
of failing or hammering it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CONNECT_ATTEMPTS = 3
BATCH_USERS = 100
"""Users per `POST /v1/recommendations/batch` (the API's maximum)."""
BATCH_EVENTS = 1000
"""Events per `POST /v1/events` (the API's maximum)."""


class ApiFailure(RuntimeError):
    """The API refused a request for a reason retrying will not fix."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} answered {status}: {detail}")
        self.status = status
        self.detail = detail


class ApiUnreachable(RuntimeError):
    """The API did not answer at all."""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:500]
    return str(body)[:300]


@dataclass
class Counters:
    """What the client did, for the report."""

    requests: int = 0
    throttled: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


class ReplayClient:
    """The endpoints the replay uses.

    Args:
        base_url: the API, e.g. `http://127.0.0.1:8000`.
        api_key: a key with the `write` scope (`admin` to create and start experiments).
        concurrency: requests in flight at most.
        transport: for tests (an `httpx.MockTransport`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        concurrency: int = 8,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"X-API-Key": api_key, "User-Agent": "movierec-replay"},
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._paused_until = 0.0
        self.counters = Counters()

    async def __aenter__(self) -> ReplayClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, label: str | None = None, **kwargs: Any) -> Any:
        """Send one request; wait out 429 and 503 answers; raise `ApiFailure` on other errors."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            delay = self._paused_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._slots:
                try:
                    response = await self._client.request(method, path, **kwargs)
                except httpx.TransportError as exc:
                    # Nobody listening is worth three quick tries; a dropped connection, more patience.
                    limit = CONNECT_ATTEMPTS if isinstance(exc, httpx.ConnectError) else MAX_ATTEMPTS
                    if attempt >= limit:
                        raise ApiUnreachable(
                            f"the API at {self._client.base_url} did not answer: {exc!r}"
                        ) from exc
                    logger.warning("%s %s failed (%s), retrying", method, path, type(exc).__name__)
                    await asyncio.sleep(min(2**attempt, 30))
                    continue
            self.counters.requests += 1
            key = label or path
            self.counters.by_path[key] = self.counters.by_path.get(key, 0) + 1
            if response.status_code in (429, 503) and attempt < MAX_ATTEMPTS:
                wait = float(response.headers.get("Retry-After", "1") or 1)
                self.counters.throttled += response.status_code == 429
                self._paused_until = max(self._paused_until, time.monotonic() + wait)
                if response.status_code == 503:
                    logger.info("%s %s: %s; retrying in %.0fs", method, path, _detail(response), wait)
                continue
            if response.status_code >= 400:
                raise ApiFailure(method, path, response.status_code, _detail(response))
            return response.json() if response.content else None
        raise ApiFailure(method, path, 429, "still throttled after retries")

    async def create_user(self, external_id: str) -> int:
        """A new account; returns its id."""
        body = await self.request(
            "POST", "/v1/users", json={"external_id": external_id}, label="POST /v1/users"
        )
        return int(body["id"])

    async def rate(self, user_id: int, movie_id: int, stars: float) -> None:
        """Record a rating (the API folds it into the user's next recommendations)."""
        payload = {"user_id": user_id, "movie_id": movie_id, "rating": stars}
        await self.request("POST", "/v1/ratings", json=payload, label="POST /v1/ratings")

    async def recommendations(self, user_ids: Sequence[int], k: int) -> list[dict[str, Any]]:
        """Lists for many users, `BATCH_USERS` per request, in the order asked."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(user_ids), BATCH_USERS):
            chunk = list(user_ids[start : start + BATCH_USERS])
            body = await self.request(
                "POST",
                "/v1/recommendations/batch",
                json={"user_ids": chunk, "k": k},
                label="POST /v1/recommendations/batch",
            )
            results.extend(body["results"])
        return results

    async def post_events(self, events: Sequence[dict[str, Any]]) -> int:
        """Log events, `BATCH_EVENTS` per request; returns how many were accepted."""
        accepted = 0
        for start in range(0, len(events), BATCH_EVENTS):
            body = await self.request(
                "POST", "/v1/events", json=list(events[start : start + BATCH_EVENTS]), label="POST /v1/events"
            )
            accepted += int(body.get("accepted", 0))
        return accepted

    async def list_experiments(self) -> list[dict[str, Any]]:
        """Every experiment (admin)."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.request("GET", "/v1/experiments", params={"page": page, "page_size": 100})
            items.extend(body["items"])
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1

    async def create_experiment(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A new draft experiment (admin)."""
        result: dict[str, Any] = await self.request("POST", "/v1/experiments", json=payload)
        return result

    async def start_experiment(self, experiment_id: int) -> dict[str, Any]:
        """Start a draft experiment (admin)."""
        result: dict[str, Any] = await self.request("POST", f"/v1/experiments/{experiment_id}/start")
        return result

    async def ready(self) -> dict[str, Any]:
        """`GET /ready` without retrying: what the API says about itself right now."""
        response = await self._client.get("/ready")
        body: dict[str, Any] = response.json()
        return body

    async def retrain(self) -> dict[str, Any]:
        """Queue a retrain (admin)."""
        result: dict[str, Any] = await self.request("POST", "/v1/admin/retrain")
        return result
