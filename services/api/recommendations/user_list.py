"""One user's list, as `GET /v1/users/{user_id}/recommendations` serves it (through the framework
or through `fast_path`), and the JSON of a served list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from services.api.auth.service import Principal
from services.api.deps import app_state, counted_later
from services.api.recommendations.service import ServedList
from services.api.recommendations.service import recommendation as recommendation_service

DEFAULT_K = 10
MAX_GENRE_LENGTH = 50


@dataclass(frozen=True, slots=True)
class UserListQuery:
    """What a request asks of one user's list."""

    user_id: int
    k: int = DEFAULT_K
    genre: str | None = None
    exclude_seen: bool = True


async def serve_user_list(request: Request, principal: Principal, query: UserListQuery) -> Response:
    """The user's top-k list for a verified key, counted against its rate limit.

    Raises:
        MovierecError: Rate limited, unknown genre, or no model loaded yet.
    """
    return json_response(await user_list_json(request, principal, query))


async def user_list_json(request: Request, principal: Principal, query: UserListQuery) -> dict[str, Any]:
    """What `serve_user_list` answers, as JSON data.

    Raises:
        MovierecError: Rate limited, unknown genre, or no model loaded yet.
    """
    served = await recommendation_service.arecommend(
        app_state(request),
        user_ids=[query.user_id],
        k=query.k,
        genre=query.genre,
        exclude_seen=query.exclude_seen,
        count=counted_later(request, principal),
    )
    return list_json(served[0], request.state.request_id)


def json_response(payload: dict[str, Any]) -> Response:
    """A JSON response encoded by orjson (stdlib `json` took ten times as long on a cache hit)."""
    return Response(orjson.dumps(payload), media_type="application/json")


def list_json(served: ServedList, request_id: UUID) -> dict[str, Any]:
    """`RecommendationsRead` as plain JSON data, built directly (no model validation on the hot path)."""
    assignment = served.assignment
    return {
        "user_id": served.user_id,
        "request_id": request_id,
        "model_version": served.model_version,
        "strategy": served.strategy,
        "experiment": {"id": assignment.experiment_id, "name": assignment.experiment_name}
        if assignment
        else None,
        "variant": {"id": assignment.variant.id, "name": assignment.variant.name} if assignment else None,
        "cold_start": served.cold_start,
        "source": served.source,
        "items": [
            {
                "id": facts.movie_id,
                "title": facts.title,
                "year": facts.year,
                "genres": list(facts.genres),
                "score": scored.score,
                "explanation": scored.explanation,
            }
            for facts, scored in served.items
        ],
    }
