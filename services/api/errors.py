"""Errors as RFC 9457 problem details (`application/problem+json`), for every 4xx and 5xx.

Expected errors are `MovierecError` subclasses raised anywhere below an endpoint; one handler
renders them. Validation errors, routing errors (404, 405) and Starlette's HTTP errors are rendered
the same way, and anything else becomes a generic 500 whose traceback is logged, never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:movierec:problem:"
DATABASE_RETRY_AFTER_SECONDS = 5


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="URI identifying the kind of problem.", examples=["urn:movierec:problem:movie-not-found"]
    )
    title: str = Field(description="Short summary of the kind of problem.", examples=["Movie not found"])
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str = Field(
        description="What went wrong with this request, for a person to read.",
        examples=["No movie with id 123456."],
    )
    instance: str = Field(description="Path of the request that failed.", examples=["/v1/movies/123456"])


class FieldError(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int] = Field(
        description="Where the field is: `path`, `query`, `header` or `body`, then its name or position.",
        examples=[["query", "k"]],
    )
    msg: str = Field(
        description="What is wrong with it.", examples=["Input should be less than or equal to 100"]
    )
    type: str = Field(description="Machine-readable kind of error.", examples=["less_than_equal"])


class ValidationProblem(Problem):
    """Problem details of a request whose parameters or body are invalid."""

    errors: list[FieldError] = Field(
        default_factory=list, description="Every invalid field (empty when the problem is not one field's)."
    )


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class MovierecError(Exception):
    """An error we expect; rendered as RFC 9457 problem details."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    @classmethod
    def problem_type(cls) -> str:
        """The `type` member of this error's problem details."""
        return PROBLEM_TYPE_PREFIX + _kebab(cls.__name__)


class BadRequest(MovierecError):
    status_code = 400
    title = "Bad request"


class Unauthorized(MovierecError):
    status_code = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})


class Forbidden(MovierecError):
    status_code = 403
    title = "Forbidden"


class NotFound(MovierecError):
    status_code = 404
    title = "Not found"


class Conflict(MovierecError):
    status_code = 409
    title = "Conflict"


class Unprocessable(MovierecError):
    status_code = 422
    title = "Unprocessable content"


class RateLimited(MovierecError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"This API key may make {limit} requests per minute; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class ServiceUnavailable(MovierecError):
    status_code = 503
    title = "Service unavailable"

    def __init__(
        self, detail: str, *, retry_after: int = DATABASE_RETRY_AFTER_SECONDS, **extensions: Any
    ) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, **extensions)


class DatabaseUnavailable(ServiceUnavailable):
    title = "Database unavailable"

    def __init__(self) -> None:
        super().__init__("The database cannot be reached right now; retry later.")


def problem_body(
    request: Request, *, status: int, title: str, detail: str, problem_type: str, **extensions: Any
) -> dict[str, Any]:
    """The JSON members of a problem."""
    return {
        "type": problem_type,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extensions,
    }


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    problem_type: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response."""
    return JSONResponse(
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
        content=problem_body(
            request, status=status, title=title, detail=detail, problem_type=problem_type, **extensions
        ),
    )


def _status_problem_type(status: int) -> str:
    try:
        return PROBLEM_TYPE_PREFIX + _kebab(HTTPStatus(status).phrase.replace(" ", "").replace("-", ""))
    except ValueError:
        return "about:blank"


def _status_title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def handle_movierec_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MovierecError)
    extensions = dict(exc.extensions)
    if exc.status_code == 422:
        extensions.setdefault("errors", [])  # every 422 has the same shape
    return problem_response(
        request,
        status=exc.status_code,
        title=exc.title,
        detail=exc.detail,
        problem_type=exc.problem_type(),
        headers=exc.headers,
        **extensions,
    )


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # The offending input is left out on purpose: it can be large, and it is the client's own.
    return [
        {
            "loc": [str(part) if not isinstance(part, int) else part for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in errors
    ]


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    where = ", ".join(".".join(str(p) for p in error["loc"]) for error in errors[:5])
    return problem_response(
        request,
        status=422,
        title="Invalid request",
        detail=f"Some parameters are invalid: {where}." if where else "The request is invalid.",
        problem_type=PROBLEM_TYPE_PREFIX + "validation-error",
        errors=errors,
    )


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404 and exc.detail == "Not Found":
        detail = f"Nothing here: {request.method} {request.url.path} is not part of this API."
    elif status == 405:
        detail = f"{request.url.path} does not support {request.method}."
    else:
        detail = str(exc.detail)
    return problem_response(
        request,
        status=status,
        title=_status_title(status),
        detail=detail,
        problem_type=_status_problem_type(status),
        headers=exc.headers,
    )


def _is_unreachable(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError) or exc.connection_invalidated


async def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if _is_unreachable(exc):
        logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return await handle_movierec_error(request, DatabaseUnavailable())
    if isinstance(exc, DataError):
        # The driver or the server refused a value the schema let through (a NUL character in
        # text, say): the client's input, so a 422 that names no SQL.
        logger.info("unstorable value on %s %s: %s", request.method, request.url.path, exc.orig)
        return problem_response(
            request,
            status=422,
            title="Invalid data",
            detail="A value cannot be stored (text with a NUL character, or a number out of range).",
            problem_type=PROBLEM_TYPE_PREFIX + "invalid-data",
        )
    logger.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return internal_error_response(request)


def internal_error_response(request: Request) -> JSONResponse:
    """The generic 500: says nothing about what failed."""
    return problem_response(
        request,
        status=500,
        title="Internal server error",
        detail="Something went wrong on our side; it has been logged.",
        problem_type=PROBLEM_TYPE_PREFIX + "internal-server-error",
    )


def register_error_handlers(app: FastAPI) -> None:
    """Render every error as problem+json (the catch-all for the rest is `CatchAllMiddleware`)."""
    app.add_exception_handler(MovierecError, handle_movierec_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(DBAPIError, handle_database_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting problem+json errors (422 uses `ValidationProblem`)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {
            "model": ValidationProblem if status == 422 else Problem,
            "description": _RESPONSE_DESCRIPTIONS.get(status, _status_title(status)),
        }
    return out


_RESPONSE_DESCRIPTIONS = {
    400: "The request is malformed.",
    401: "The `X-API-Key` header is missing, unknown or revoked.",
    403: "The API key lacks the scope this operation needs.",
    404: "The resource does not exist.",
    409: "The request conflicts with the resource's current state.",
    413: "The request body is too large.",
    422: "A parameter or the body is invalid; `errors` lists each field.",
    429: "The API key made too many requests; see `Retry-After`.",
    503: "A dependency (database, model) is unavailable; see `Retry-After`.",
}
