"""The route class of every `/v1` operation: query parameters it does not define are an error."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def query_parameter_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters an operation reads, its dependencies' included."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_parameter_names(sub)
    return frozenset(names)


class StrictQueryRoute(APIRoute):
    """An `APIRoute` that refuses unknown query parameters with a 422 (a typo such as `?genres=`
    must not be silently ignored).

    The allowed names are computed once, when the route is built; checking them is a set difference
    before the dependencies run, not one more dependency to solve on every request.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        allowed = query_parameter_names(self.dependant)

        async def strict_handler(request: Request) -> Response:
            if request.scope["query_string"]:
                unknown = sorted(set(request.query_params) - allowed)
                if unknown:
                    raise RequestValidationError(
                        [
                            {
                                "loc": ("query", name),
                                "msg": "Unknown query parameter",
                                "type": "extra_forbidden",
                            }
                            for name in unknown
                        ]
                    )
            return await handler(request)

        return strict_handler
