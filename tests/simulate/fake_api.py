"""An in-memory stand-in for the REST API, as an `httpx.MockTransport`.

Every request body is validated with the API's own pydantic schemas, so a replay that drifts from
the API's contract fails here. Users are split into two variants by id parity: `oracle` (odd ids)
recommends the movies the replayed user truly liked in the held-out part first; `popular` (even
ids) recommends movies nobody in the plan rated. A fair replay must make `oracle` win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.api.events.schemas import EventCreate
from services.api.experiments.schemas import ExperimentCreate
from services.api.recommendations.schemas import BatchRecommendationsRequest
from services.api.users.schemas import RatingCreate, UserCreate
from services.simulate.plan import ReplayUser

UNRATED = list(range(100_000, 100_100))
"""Movies no replayed user has rated: what the losing variant recommends."""


@dataclass
class FakeApi:
    """State of the fake API and the handler that serves it."""

    plan: Sequence[ReplayUser]
    model_ready: bool = True
    throttle_first: int = 0
    """Answer this many requests with 429 before serving normally."""
    experiments: list[dict[str, Any]] = field(default_factory=list)
    users: dict[int, str] = field(default_factory=dict)
    ratings: dict[tuple[int, int], float] = field(default_factory=dict)
    rating_posts: list[RatingCreate] = field(default_factory=list)
    events: list[EventCreate] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)
    retrains: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self._by_source = {user.source_id: user for user in self.plan}

    def transport(self) -> httpx.MockTransport:
        """The transport to give the replay's client."""
        return httpx.MockTransport(self.handle)

    def _running(self) -> dict[str, Any] | None:
        return next((e for e in self.experiments if e["status"] == "running"), None)

    def _list_for(self, user_id: int, k: int) -> dict[str, Any]:
        source = int(self.users[user_id].rsplit("-ml", 1)[1])
        replayed = self._by_source[source]
        rated = {m for (u, m) in self.ratings if u == user_id}
        oracle = user_id % 2 == 1
        if oracle:
            liked = sorted(replayed.liked_future - rated)
            movies = (liked + [m for m in UNRATED if m not in rated])[:k]
        else:
            movies = UNRATED[:k]
        running = self._running()
        variant = "oracle" if oracle else "popular"
        self.served[variant] = self.served.get(variant, 0) + 1
        return {
            "user_id": user_id,
            "request_id": str(uuid.uuid4()),
            "model_version": "hybrid-20261121T030000-1a2b3c4d",
            "strategy": "hybrid" if oracle else "popularity",
            "experiment": {"id": running["id"], "name": running["name"]} if running else None,
            "variant": {"id": 1 if oracle else 2, "name": variant} if running else None,
            "cold_start": True,
            "source": "model",
            "items": [
                {
                    "id": m,
                    "title": f"Movie {m}",
                    "year": 1995,
                    "genres": ["Drama"],
                    "score": 1.0,
                    "explanation": "x",
                }
                for m in movies
            ],
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route one request."""
        self.requests += 1
        if self.throttle_first > 0:
            self.throttle_first -= 1
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"title": "Too Many Requests"})
        assert request.headers["X-API-Key"] == "mr_test"
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        if (method, path) == ("GET", "/ready"):
            model = "ok" if self.model_ready else "unavailable"
            return httpx.Response(
                200, json={"status": "ok", "checks": {"model": model}, "model_version": "v1"}
            )
        if (method, path) == ("POST", "/v1/admin/retrain"):
            self.retrains += 1
            self.model_ready = True
            return httpx.Response(202, json={"task_id": "t", "task_name": "retrain", "status_url": "/x"})
        if (method, path) == ("POST", "/v1/users"):
            created = UserCreate.model_validate(body)
            user_id = 10_000 + len(self.users)
            self.users[user_id] = str(created.external_id)
            return httpx.Response(201, json={"id": user_id, "external_id": created.external_id})
        if (method, path) == ("POST", "/v1/ratings"):
            rating = RatingCreate.model_validate(body)
            self.rating_posts.append(rating)
            self.ratings[(rating.user_id, rating.movie_id)] = rating.rating
            return httpx.Response(201, json=body)
        if (method, path) == ("POST", "/v1/recommendations/batch"):
            asked = BatchRecommendationsRequest.model_validate(body)
            return httpx.Response(200, json={"results": [self._list_for(u, asked.k) for u in asked.user_ids]})
        if (method, path) == ("POST", "/v1/events"):
            events = [EventCreate.model_validate(e) for e in (body if isinstance(body, list) else [body])]
            self.events.extend(events)
            return httpx.Response(202, json={"accepted": len(events), "events": []})
        if (method, path) == ("GET", "/v1/experiments"):
            return httpx.Response(
                200,
                json={"items": self.experiments, "total": len(self.experiments), "page": 1, "page_size": 100},
            )
        if (method, path) == ("POST", "/v1/experiments"):
            created_experiment = ExperimentCreate.model_validate(body)
            experiment = {"id": len(self.experiments) + 1, "name": created_experiment.name, "status": "draft"}
            self.experiments.append(experiment)
            return httpx.Response(201, json=experiment)
        if method == "POST" and path.startswith("/v1/experiments/") and path.endswith("/start"):
            experiment_id = int(path.split("/")[3])
            if self._running() is not None:
                return httpx.Response(
                    409, json={"title": "Conflict", "detail": "another experiment is running"}
                )
            experiment = next(e for e in self.experiments if e["id"] == experiment_id)
            experiment["status"] = "running"
            return httpx.Response(200, json=experiment)
        return httpx.Response(404, json={"title": "Not Found", "detail": f"{method} {path}"})
