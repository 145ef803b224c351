"""A stand-in for the REST API in a thread: canned answers in the API's documented shapes.

The dashboard's Try it page and guardrails talk HTTP; this server lets their tests run without a
trained model. Its `/metrics` is rendered by the API's own `Metrics` class, so the parsing is checked
against the real exposition format.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from services.api.metrics import Metrics

API_KEY = "mr_test_key_for_the_dashboard"
MODEL_VERSION = "hybrid-20261121T030000-1a2b3c4d"


def _movie(movie_id: int, title: str, year: int, genres: list[str], score: float, why: str) -> dict[str, Any]:
    return {
        "id": movie_id,
        "title": title,
        "year": year,
        "genres": genres,
        "score": score,
        "explanation": why,
    }


ITEMS = [
    _movie(50, "Star Wars", 1977, ["Action", "Sci-Fi"], 0.91, "because you rated Return of the Jedi 5 stars"),
    _movie(100, "Fargo", 1996, ["Crime", "Drama"], 0.84, "popular with people who like Pulp Fiction"),
    _movie(181, "Return of the Jedi", 1983, ["Action", "Sci-Fi"], 0.77, "same director as Star Wars"),
]


def metrics_text() -> bytes:
    """What the API's /metrics says after a few recommendation requests (one failed)."""
    metrics = Metrics()
    route = "/v1/users/{user_id}/recommendations"
    for seconds, status in ((0.004, "200"), (0.006, "200"), (0.02, "200"), (0.3, "500")):
        metrics.latency.labels("GET", route).observe(seconds)
        metrics.requests.labels("GET", route, status).inc()
    metrics.requests.labels("GET", "/v1/movies", "200").inc()
    return metrics.render()


class Handler(BaseHTTPRequestHandler):
    """Answers the few endpoints the dashboard calls."""

    def log_message(self, *_: Any) -> None:
        """Quiet."""

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _authorised(self) -> bool:
        if self.headers.get("X-API-Key") == API_KEY:
            return True
        problem = {
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "Invalid API key.",
        }
        self._send(401, problem, "application/problem+json")
        return False

    def do_GET(self) -> None:
        """Recommendations for a user, similar movies, movie search and metrics."""
        url = urlparse(self.path)
        if url.path == "/metrics":
            self._send(200, metrics_text(), "text/plain; version=0.0.4")
            return
        if not self._authorised():
            return
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["v1", "users"] and parts[-1] == "recommendations":
            k = int(parse_qs(url.query).get("k", ["10"])[0])
            self._send(
                200,
                {
                    "user_id": int(parts[2]),
                    "request_id": "01932c4e-7a9b-7c3d-8e5f-0123456789ab",
                    "model_version": MODEL_VERSION,
                    "strategy": "hybrid",
                    "experiment": {"id": 1, "name": "svd-vs-hybrid"},
                    "variant": {"id": 2, "name": "hybrid"},
                    "cold_start": False,
                    "source": "cache",
                    "items": ITEMS[:k],
                },
            )
        elif parts[:2] == ["v1", "movies"] and len(parts) == 2:
            hits = [
                {
                    **{k: v for k, v in m.items() if k in ("id", "title", "year", "genres")},
                    "match_score": 90.0,
                }
                for m in ITEMS
            ]
            self._send(200, {"items": hits, "total": len(hits), "page": 1, "page_size": 20})
        elif parts[:2] == ["v1", "movies"] and parts[-1] == "similar":
            movie = next((m for m in ITEMS if m["id"] == int(parts[2])), ITEMS[0])
            others = [m for m in ITEMS if m is not movie]
            self._send(200, {"movie": movie, "model_version": MODEL_VERSION, "items": others})
        else:
            self._send(
                404, {"title": "Not Found", "status": 404, "detail": url.path}, "application/problem+json"
            )

    def do_POST(self) -> None:
        """Recommendations from liked titles."""
        if not self._authorised():
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if urlparse(self.path).path == "/v1/recommendations/from-titles":
            matches = [
                {"query": q, "movie": {k: v for k, v in ITEMS[0].items() if k in ("id", "title", "year", "genres")},
                 "match_score": 95.0}
                for q in body["liked"]
            ]  # fmt: skip
            self._send(
                200,
                {
                    "request_id": "01932c4e-7a9b-7c3d-8e5f-0123456789ac",
                    "model_version": MODEL_VERSION,
                    "matches": matches,
                    "items": ITEMS[1:],
                },
            )
        else:
            self._send(
                404, {"title": "Not Found", "status": 404, "detail": self.path}, "application/problem+json"
            )


@contextmanager
def fake_api() -> Iterator[str]:
    """Serve the fake API on a free local port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
