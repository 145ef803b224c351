"""Hostile and malformed input: the right 4xx problem+json, no stack trace or SQL, nothing stored changes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ml.datasets import generate, write_grouplens
from tests.resilience.conftest import (
    ADMIN,
    PROBLEM_JSON,
    ApiProcess,
    Measurement,
    Stack,
    assert_problem,
    record,
)

MAX_BODY = 1_048_576
HUGE = 10**40


@dataclass(frozen=True)
class Keys:
    read: dict[str, str]
    revoked: dict[str, str]


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[ApiProcess]:
    yield stack.start_api()


@pytest.fixture(scope="module")
def keys(api: ApiProcess) -> Keys:
    with httpx.Client(base_url=api.url, headers=ADMIN, timeout=10) as client:
        read = client.post("/v1/admin/api-keys", json={"name": "hostile-reader", "scopes": ["read"]})
        doomed = client.post("/v1/admin/api-keys", json={"name": "hostile-revoked", "scopes": ["admin"]})
        assert read.status_code == 201 and doomed.status_code == 201, (read.text, doomed.text)
        assert client.delete(f"/v1/admin/api-keys/{doomed.json()['id']}").status_code in (200, 204)
    return Keys(read={"X-API-Key": read.json()["key"]}, revoked={"X-API-Key": doomed.json()["key"]})


@dataclass(frozen=True)
class Hostile:
    name: str
    method: str
    path: str
    status: int
    kwargs: dict[str, Any]


def deep(depth: int) -> str:
    return '{"user_id": ' + "[" * depth + "]" * depth + ', "movie_id": 1, "rating": 4}'


def hostile_requests(keys: Keys) -> list[Hostile]:
    json_headers = {**ADMIN, "Content-Type": "application/json"}
    return [
        # bodies
        Hostile(
            "oversized body",
            "POST",
            "/v1/ratings",
            413,
            {
                "content": b'{"user_id": 1, "movie_id": 1, "rating": 4, "x": "' + b"a" * MAX_BODY + b'"}',
                "headers": json_headers,
            },
        ),
        Hostile(
            "oversized body, chunked (no Content-Length)",
            "POST",
            "/v1/events",
            413,
            {"content": iter([b"[" + b" " * 65_536] * 20 + [b"]"]), "headers": json_headers},
        ),
        # a parser that gives up on the depth: 400, the body is not readable
        Hostile(
            "deep JSON nesting (100,000)",
            "POST",
            "/v1/ratings",
            400,
            {"content": deep(100_000), "headers": json_headers},
        ),
        Hostile(
            "deep JSON nesting in events",
            "POST",
            "/v1/events",
            400,
            {"content": "[" * 50_000 + "]" * 50_000, "headers": json_headers},
        ),
        # malformed JSON is a validation error (422 json_invalid), as tests/api/test_errors.py pins
        Hostile(
            "not JSON", "POST", "/v1/ratings", 422, {"content": b"{'user_id': 1", "headers": json_headers}
        ),
        Hostile(
            "invalid UTF-8",
            "POST",
            "/v1/ratings",
            400,
            {"content": b'{"user_id": "\xff\xfe"}', "headers": json_headers},
        ),
        Hostile(
            "string ids",
            "POST",
            "/v1/ratings",
            422,
            {"json": {"user_id": "5", "movie_id": "1", "rating": 4}, "headers": ADMIN},
        ),
        Hostile(
            "boolean ids",
            "POST",
            "/v1/ratings",
            422,
            {"json": {"user_id": True, "movie_id": 1, "rating": 4}, "headers": ADMIN},
        ),
        Hostile(
            "NaN rating",
            "POST",
            "/v1/ratings",
            422,
            {"content": '{"user_id": 1, "movie_id": 1, "rating": NaN}', "headers": json_headers},
        ),
        Hostile(
            "rating off the half-star scale",
            "POST",
            "/v1/ratings",
            422,
            {"json": {"user_id": 1, "movie_id": 1, "rating": 4.3}, "headers": ADMIN},
        ),
        Hostile(
            "enormous ids in a body",
            "POST",
            "/v1/ratings",
            422,
            {"json": {"user_id": HUGE, "movie_id": 2**63, "rating": 4}, "headers": ADMIN},
        ),
        Hostile(
            "a list where an object goes", "POST", "/v1/users", 422, {"json": [1, 2, 3], "headers": ADMIN}
        ),
        Hostile(
            "unknown fields",
            "POST",
            "/v1/users",
            422,
            {"json": {"external_id": "x", "is_admin": True}, "headers": ADMIN},
        ),
        Hostile(
            "from-titles: a number for a title",
            "POST",
            "/v1/recommendations/from-titles",
            422,
            {"json": {"liked": [42], "k": 5}, "headers": ADMIN},
        ),
        Hostile(
            "from-titles: 10,000 titles",
            "POST",
            "/v1/recommendations/from-titles",
            422,
            {"json": {"liked": ["x"] * 10_000}, "headers": ADMIN},
        ),
        Hostile(
            "batch of 101 users",
            "POST",
            "/v1/recommendations/batch",
            422,
            {"json": {"user_ids": list(range(1, 102))}, "headers": ADMIN},
        ),
        Hostile(
            "Idempotency-Key with control characters",
            "POST",
            "/v1/ratings",
            422,
            {
                "json": {"user_id": 1, "movie_id": 1, "rating": 4},
                "headers": {**ADMIN, "Idempotency-Key": "a\tb"},
            },
        ),
        # parameters
        Hostile(
            "huge k", "GET", "/v1/users/1/recommendations", 422, {"params": {"k": 10**6}, "headers": ADMIN}
        ),
        Hostile(
            "enormous k", "GET", "/v1/users/1/recommendations", 422, {"params": {"k": HUGE}, "headers": ADMIN}
        ),
        Hostile("k zero", "GET", "/v1/movies/1/similar", 422, {"params": {"k": 0}, "headers": ADMIN}),
        Hostile(
            "k not a number",
            "GET",
            "/v1/users/1/recommendations",
            422,
            {"params": {"k": "ten"}, "headers": ADMIN},
        ),
        Hostile("negative user id", "GET", "/v1/users/-1/recommendations", 422, {"headers": ADMIN}),
        Hostile("zero movie id", "GET", "/v1/movies/0", 422, {"headers": ADMIN}),
        Hostile("enormous user id", "GET", f"/v1/users/{HUGE}", 422, {"headers": ADMIN}),
        Hostile("id just past 2^53 - 1", "GET", f"/v1/users/{2**53}/assignment", 422, {"headers": ADMIN}),
        Hostile(
            "unknown query parameter",
            "GET",
            "/v1/movies",
            422,
            {"params": {"q": "toy", "order_by": "1; DROP TABLE movie"}, "headers": ADMIN},
        ),
        Hostile(
            "page size 10^6", "GET", "/v1/movies", 422, {"params": {"page_size": 10**6}, "headers": ADMIN}
        ),
        Hostile(
            "search longer than 200",
            "GET",
            "/v1/movies",
            422,
            {"params": {"q": "a" * 10_000}, "headers": ADMIN},
        ),
        Hostile("NUL in search", "GET", "/v1/movies", 422, {"params": {"q": "toy\x00"}, "headers": ADMIN}),
        Hostile(
            "SQL-looking unknown genre",
            "GET",
            "/v1/users/1/recommendations",
            404,
            {"params": {"genre": "Drama' OR '1'='1"}, "headers": ADMIN},
        ),
        Hostile("unknown movie", "GET", "/v1/movies/999999/similar", 404, {"headers": ADMIN}),
        # experiments
        Hostile("unknown experiment id", "GET", "/v1/experiments/999999", 404, {"headers": ADMIN}),
        Hostile("experiment id past 2^31 - 1", "GET", f"/v1/experiments/{2**31}", 422, {"headers": ADMIN}),
        Hostile(
            "experiment name for an id", "GET", "/v1/experiments/no-such-experiment", 422, {"headers": ADMIN}
        ),
        Hostile(
            "SQL for an experiment id",
            "GET",
            "/v1/experiments/1%3B%20DROP%20TABLE%20experiment",
            422,
            {"headers": ADMIN},
        ),
        Hostile(
            "start an unknown experiment", "POST", "/v1/experiments/999999/start", 404, {"headers": ADMIN}
        ),
        Hostile(
            "unknown experiment status",
            "GET",
            "/v1/experiments",
            422,
            {"params": {"status": "hacked"}, "headers": ADMIN},
        ),
        Hostile(
            "experiment weights not summing to 100",
            "POST",
            "/v1/experiments",
            422,
            {
                "json": {
                    "name": "bad",
                    "variants": [
                        {"name": "a", "weight": 90, "is_control": True, "config": {"strategy": "svd"}},
                        {"name": "b", "weight": 90, "config": {"strategy": "hybrid"}},
                    ],
                },
                "headers": ADMIN,
            },
        ),
        # keys and scopes
        Hostile("no API key", "GET", "/v1/users/1/recommendations", 401, {}),
        Hostile("empty API key", "GET", "/v1/movies", 401, {"headers": {"X-API-Key": ""}}),
        Hostile("garbage API key", "GET", "/v1/movies", 401, {"headers": {"X-API-Key": "' OR 1=1 --"}}),
        Hostile(
            "unknown well-formed key", "GET", "/v1/movies", 401, {"headers": {"X-API-Key": "mr_" + "A" * 43}}
        ),
        Hostile("8 KiB API key", "GET", "/v1/movies", 401, {"headers": {"X-API-Key": "mr_" + "x" * 8192}}),
        Hostile("revoked key", "GET", "/v1/movies", 401, {"headers": keys.revoked}),
        Hostile(
            "revoked key on admin",
            "POST",
            "/v1/admin/api-keys",
            401,
            {"json": {"name": "x", "scopes": ["admin"]}, "headers": keys.revoked},
        ),
        Hostile("read key lists models", "GET", "/v1/admin/models", 403, {"headers": keys.read}),
        Hostile(
            "read key creates a key",
            "POST",
            "/v1/admin/api-keys",
            403,
            {"json": {"name": "escalate", "scopes": ["admin"]}, "headers": keys.read},
        ),
        Hostile("read key triggers a retrain", "POST", "/v1/admin/retrain", 403, {"headers": keys.read}),
        Hostile(
            "read key creates an experiment",
            "POST",
            "/v1/experiments",
            403,
            {"json": {"name": "x", "variants": []}, "headers": keys.read},
        ),
        Hostile(
            "read key writes a rating",
            "POST",
            "/v1/ratings",
            403,
            {"json": {"user_id": 1, "movie_id": 1, "rating": 4}, "headers": keys.read},
        ),
    ]


def test_hostile_requests_get_clean_problems_and_change_nothing(
    stack: Stack, api: ApiProcess, keys: Keys
) -> None:
    cases = hostile_requests(keys)
    before = stack.counts()
    wrong: list[str] = []
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for case in cases:
            response = client.request(case.method, case.path, **case.kwargs)
            try:
                body = assert_problem(response, case.status)
                assert body.get("instance", "").startswith("/")
                if case.status == 401:
                    assert response.headers.get("WWW-Authenticate") == 'ApiKey header="X-API-Key"'
            except (AssertionError, KeyError, ValueError) as exc:
                wrong.append(f"{case.name}: {exc}")
    assert not wrong, "\n".join(wrong)
    assert stack.counts() == before
    record(
        Measurement(
            scenario="hostile",
            fault="Hostile and malformed requests (bodies, types, ids, k, keys, scopes)",
            requests=len(cases),
            errors=0,
            data_lost=0,
            recovery_seconds=None,
            notes="each the expected 4xx problem+json, no trace or SQL in the body; row counts unchanged",
        )
    )


@pytest.mark.parametrize(
    "title",
    [
        "'; DROP TABLE movie; --",
        "Robert'); DELETE FROM rating WHERE ('1'='1",
        "1' UNION SELECT key_hash FROM api_key --",
        "星球大战",
        "Amélie Poulain",
        "🎬🍿 toy story 🎥",
        "\u202etoy story",
        "%_%",
        "\\",
        "toy\u0000story",
    ],
)
def test_unicode_and_sql_looking_titles_are_just_text(stack: Stack, api: ApiProcess, title: str) -> None:
    before = stack.counts()
    with httpx.Client(base_url=api.url, headers=ADMIN, timeout=30) as client:
        liked = client.post("/v1/recommendations/from-titles", json={"liked": [title, "toy story"], "k": 5})
        search = client.get("/v1/movies", params={"q": title})
    assert liked.status_code == 200, liked.text
    assert liked.json()["matches"][0]["query"] == title
    catalog = set(stack.trained.dataset.movies["movie_id"].tolist())
    assert {item["id"] for item in liked.json()["items"]} <= catalog
    if "\x00" in title:  # PostgreSQL text cannot hold NUL: the search refuses it up front
        assert_problem(search, 422)
    else:
        assert search.status_code == 200, search.text
        assert {item["id"] for item in search.json()["items"]} <= catalog
    assert "mr_" not in liked.text + search.text
    assert stack.counts() == before
    record(
        Measurement(
            scenario="hostile",
            fault="Unicode and SQL-looking titles in from-titles and movie search",
            requests=2,
            errors=0,
            data_lost=0,
            recovery_seconds=None,
            notes="treated as plain text: 200 (search refuses NUL with 422); row counts unchanged",
        )
    )


def test_a_malformed_csv_loads_nothing(stack: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "broken-ml-latest"
    write_grouplens(generate(600, seed=9), folder, "ml-latest")
    lines = (folder / "ratings.csv").read_text().splitlines()
    lines[7] = "1,2,'; DROP TABLE rating; --,964982703"
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    before = stack.counts()
    # when
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "data", "load", str(folder)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**stack.env(), "COLUMNS": "200", "DATA_DIR": str(tmp_path / "data")},
        timeout=120,
        check=False,
    )
    # then
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "ratings.csv:8" in result.stderr
    assert "nothing was loaded" in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.counts() == before
    record(
        Measurement(
            scenario="hostile",
            fault="Malformed ratings.csv loaded through the CLI",
            requests=1,
            errors=0,
            data_lost=0,
            recovery_seconds=None,
            notes="exit 2 naming ratings.csv:8, nothing loaded; row counts unchanged",
        )
    )


def test_problem_documents_are_served_as_problem_json(api: ApiProcess) -> None:
    """The content type is exact (not `application/json`), also for paths and methods that do not exist."""
    with httpx.Client(base_url=api.url, headers=ADMIN, timeout=10) as client:
        for response in (
            client.get(f"/v1/{uuid.uuid4().hex}"),
            client.put("/v1/movies/1"),
            client.get("/v1/movies/1", headers={"X-API-Key": "nope"}),
        ):
            assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
            assert response.status_code in (401, 404, 405)
