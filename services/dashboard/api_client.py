"""The dashboard's client of the movierec REST API (the Try it page and the API's own metrics).

The Try it page goes through the API, never the database, so it shows exactly what a client
application gets: the same model version, experiment variant, explanations and errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class ApiUnavailable(RuntimeError):
    """The API could not be reached."""


class ApiError(RuntimeError):
    """The API answered with an error; `detail` is its problem+json detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail


class ApiClient:
    """A few endpoints of `/v1`, with the API key sent as `X-API-Key`."""

    def __init__(
        self, base_url: str, api_key: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"the API at {self.base_url} did not answer ({type(exc).__name__})") from exc
        if response.status_code >= 400:
            title, detail = response.reason_phrase, response.text[:300]
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                title = str(body.get("title") or title)
                detail = str(body.get("detail") or detail)
            raise ApiError(response.status_code, title, detail)
        return response.json()

    def user_recommendations(self, user_id: int, k: int = 10) -> dict[str, Any]:
        """`GET /v1/users/{id}/recommendations`: a user's list, with experiment, variant and model."""
        result: dict[str, Any] = self._request("GET", f"/v1/users/{user_id}/recommendations", params={"k": k})
        return result

    def from_titles(self, liked: list[str], k: int = 10) -> dict[str, Any]:
        """`POST /v1/recommendations/from-titles`: fuzzy-match typed titles and recommend from them."""
        result: dict[str, Any] = self._request(
            "POST", "/v1/recommendations/from-titles", json={"liked": liked, "k": k}
        )
        return result

    def similar_movies(self, movie_id: int, k: int = 10) -> dict[str, Any]:
        """`GET /v1/movies/{id}/similar`: movies like this one."""
        result: dict[str, Any] = self._request("GET", f"/v1/movies/{movie_id}/similar", params={"k": k})
        return result

    def search_movies(self, query: str, page_size: int = 20) -> list[dict[str, Any]]:
        """`GET /v1/movies?q=`: movies whose title matches, best first."""
        page = self._request("GET", "/v1/movies", params={"q": query, "page_size": page_size})
        items: list[dict[str, Any]] = page.get("items", []) if isinstance(page, dict) else []
        return items


@dataclass(frozen=True)
class RouteHealth:
    """Latency and errors of one route since the API process started."""

    method: str
    route: str
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float

    @property
    def error_rate(self) -> float:
        """Share of requests answered with a 5xx status."""
        return self.errors / self.requests if self.requests else math.nan


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Quantile of a cumulative histogram by linear interpolation inside the bucket (as PromQL does)."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            width = count - previous_count
            fraction = (rank - previous_count) / width if width else 0.0
            return previous_bound + (bound - previous_bound) * fraction
        previous_bound, previous_count = bound, count
    return previous_bound


RECOMMENDATION_ROUTES = ("recommendations", "/similar")
"""Routes that serve recommendations: their health is the experiment's guardrail."""


def parse_route_health(text: str, routes: tuple[str, ...] = RECOMMENDATION_ROUTES) -> list[RouteHealth]:
    """Request counts and latency quantiles per route whose template contains one of `routes`.

    Args:
        text: the Prometheus text exposition of the API's `/metrics`.

    Returns:
        One entry per (method, route) with requests, busiest first.
    """
    requests: dict[tuple[str, str], float] = {}
    errors: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            route = sample.labels.get("route", "")
            if not any(part in route for part in routes):
                continue
            key = (sample.labels.get("method", ""), route)
            if sample.name == "movierec_http_requests_total":
                requests[key] = requests.get(key, 0.0) + sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors[key] = errors.get(key, 0.0) + sample.value
            elif sample.name == "movierec_http_request_duration_seconds_bucket":
                bound = float(sample.labels["le"])
                per_route = buckets.setdefault(key, {})
                per_route[bound] = per_route.get(bound, 0.0) + sample.value
    result = []
    for key, count in requests.items():
        if count <= 0:
            continue
        ordered = sorted(buckets.get(key, {}).items())
        result.append(
            RouteHealth(
                method=key[0],
                route=key[1],
                requests=int(count),
                errors=int(errors.get(key, 0.0)),
                p50_ms=_quantile(ordered, 0.5) * 1000,
                p95_ms=_quantile(ordered, 0.95) * 1000,
            )
        )
    return sorted(result, key=lambda health: -health.requests)


def fetch_route_health(base_url: str, api_key: str | None) -> list[RouteHealth]:
    """The recommendation routes' health from the API's `/metrics`.

    Raises:
        ApiUnavailable: the API did not answer or does not export metrics.
    """
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/metrics", headers=headers, timeout=httpx.Timeout(3.0))
    except httpx.TransportError as exc:
        raise ApiUnavailable(f"the API at {base_url} did not answer") from exc
    if response.status_code != 200:
        raise ApiUnavailable(f"{base_url}/metrics answered {response.status_code}")
    return parse_route_health(response.text)
