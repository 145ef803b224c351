"""Pure ASGI middleware: request ids and rate-limit headers, metrics, and the catch-all 500."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import (
    PROBLEM_TYPE_PREFIX,
    internal_error_response,
    problem_response,
)
from services.api.metrics import Metrics
from services.api.request_context import uuid7

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RAW = REQUEST_ID_HEADER.lower().encode()
ROUTE_TEMPLATE_KEY = "movierec.route_template"
"""Where a request served without the router names its route, for the metrics."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    """Gives each request an id (a UUIDv7, also the `request_id` of recommendation lists), adds it
    and the rate-limit status to the response headers, and turns any unhandled exception into a
    generic problem+json 500 whose traceback is logged and never sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = uuid7()
        state["request_id"] = request_id
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Appended as raw pairs: no response sets these itself, so nothing to replace.
                headers = [*message.get("headers", ()), (_REQUEST_ID_RAW, str(request_id).encode())]
                rate_limit = state.get("rate_limit")
                if rate_limit is not None:
                    headers += [
                        (name.lower().encode(), value.encode())
                        for name, value in rate_limit.headers().items()
                    ]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception(
                "unhandled error on %s %s (request %s)", scope.get("method"), scope.get("path"), request_id
            )
            if started:
                raise
            response = internal_error_response(Request(scope))
            await response(scope, receive, send_with_headers)


def route_template(scope: Scope) -> str | None:
    """The path template of the matched route ("/v1/users/{user_id}/recommendations"), if any."""
    named = scope.get(ROUTE_TEMPLATE_KEY)
    if named is not None:
        return str(named)
    # FastAPI keeps the full path of a route included with a prefix in its route context.
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if path:
        return str(path)
    route = scope.get("route")
    return getattr(route, "path", None)


class MetricsMiddleware:
    """Counts requests and times them, labelled by route template (not by raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        template: str | None = None

        async def send_and_record(message: Message) -> None:
            nonlocal status, template
            if message["type"] == "http.response.start":
                status = message["status"]
                template = route_template(scope)
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            path = template or route_template(scope) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.observe_request(method, path, status, time.perf_counter() - started)


class BodyTooLarge(HTTPException):
    """Raised while reading a body past the limit; FastAPI's body parsing lets HTTP errors through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes.")


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with a 413 problem, by `Content-Length` before
    reading anything, or while reading a body sent without one."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            too_large = declared.isdigit()
            response = problem_response(
                Request(scope),
                status=413 if too_large else 400,
                title="Content too large" if too_large else "Bad request",
                detail=f"Request bodies are limited to {self.max_bytes} bytes."
                if too_large
                else "Content-Length is not a number.",
                problem_type=PROBLEM_TYPE_PREFIX + ("content-too-large" if too_large else "bad-request"),
            )
            await response(scope, receive, send)
            return
        received = 0

        async def receive_with_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_with_limit, send)
