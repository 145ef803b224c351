"""`GET /v1/users/{user_id}/recommendations` without the framework's per-request work.

Most calls to the API are this one, with plain parameters and a key verified seconds ago. For
those, `UserListFastPath` reads the path and query itself and runs the endpoint's own code
(`user_list_json`, which `serve_user_list` wraps), skipping routing, dependency solving and parameter validation: a third of
the time of a cache hit. Anything it does not recognise as plainly valid (another path or method,
an unknown or repeated parameter, a value the framework would coerce or refuse, a key not in the
key cache or without the `read` scope) goes on to the application, which answers it, errors
included, as it answers every other request.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.auth.service import cached_principal
from services.api.deps import MAX_ID, MAX_K
from services.api.errors import MovierecError, handle_movierec_error
from services.api.middleware import ROUTE_TEMPLATE_KEY
from services.api.recommendations.user_list import DEFAULT_K, MAX_GENRE_LENGTH, UserListQuery, user_list_json
from services.api.state import AppState

ROUTE = "/v1/users/{user_id}/recommendations"
_PATH = re.compile(r"/v1/users/([0-9]{1,16})/recommendations")
_K = re.compile(r"[0-9]{1,3}")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_API_KEY_HEADER = b"x-api-key"


def parse_user_list_request(path: str, query_string: bytes) -> UserListQuery | None:
    """The request's parameters if they are plainly valid, else None (the framework decides)."""
    match = _PATH.fullmatch(path)
    if match is None:
        return None
    user_id = int(match.group(1))
    if not 1 <= user_id <= MAX_ID:
        return None
    k, genre, exclude_seen = DEFAULT_K, None, True
    if query_string:
        seen: set[str] = set()
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name in seen:
                return None
            seen.add(name)
            if name == "k" and _K.fullmatch(value) and 1 <= int(value) <= MAX_K:
                k = int(value)
            elif name == "genre" and 0 < len(value) <= MAX_GENRE_LENGTH and value.isprintable():
                genre = value
            elif name == "exclude_seen" and value.lower() in _BOOLEANS:
                exclude_seen = _BOOLEANS[value.lower()]
            else:
                return None
    return UserListQuery(user_id, k, genre, exclude_seen)


def _api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _API_KEY_HEADER:
            return str(value.decode("latin-1"))
    return None


class UserListFastPath:
    """ASGI middleware serving plainly valid user-list requests by the endpoint's own code.

    It sits inside `RequestContextMiddleware` (request id, rate-limit headers, the catch-all 500)
    and `MetricsMiddleware` (it names the route for them), so those see it as any other request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = None
        if scope["type"] == "http" and scope["method"] == "GET":
            query = parse_user_list_request(scope["path"], scope["query_string"])
        if query is None:
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.api
        try:
            principal = cached_principal(state.keys, _api_key(scope))
        except MovierecError:  # no key, or a refused one: the framework answers
            principal = None
        if principal is None or not principal.allows("read"):
            await self.app(scope, receive, send)  # the key is looked up, or refused, as usual
            return
        scope[ROUTE_TEMPLATE_KEY] = ROUTE
        state.metrics.fast_path.inc()
        request = Request(scope, receive)
        try:
            payload = await user_list_json(request, principal, query)
        except MovierecError as exc:
            response = await handle_movierec_error(request, exc)
            await response(scope, receive, send)
            return
        # The two ASGI messages a `Response` would send, without building one.
        body = orjson.dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})
