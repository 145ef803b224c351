"""Every 4xx and 5xx is RFC 9457 problem+json, and nothing internal leaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import Keys

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == status
    assert body["type"].startswith("urn:movierec:problem:")
    return body


class TestValidation:
    @pytest.mark.parametrize(
        ("path", "field"),
        [
            ("/v1/users/1/recommendations?k=1000", ["query", "k"]),
            ("/v1/users/1/recommendations?k=0", ["query", "k"]),
            ("/v1/users/1/recommendations?k=ten", ["query", "k"]),
            ("/v1/users/-5/recommendations", ["path", "user_id"]),
            ("/v1/users/0/recommendations", ["path", "user_id"]),
            ("/v1/users/99999999999999999999/recommendations", ["path", "user_id"]),
            ("/v1/users/abc/recommendations", ["path", "user_id"]),
            ("/v1/users/1/recommendations?exclude_seen=maybe", ["query", "exclude_seen"]),
            ("/v1/movies?page_size=500", ["query", "page_size"]),
            ("/v1/movies/-1/similar", ["path", "movie_id"]),
        ],
    )
    def test_bad_parameters_are_422_with_field_errors(
        self, client: TestClient, keys: Keys, path: str, field: list[str]
    ) -> None:
        body = assert_problem(client.get(path, headers=keys.admin), 422)
        assert field in [error["loc"] for error in body["errors"]]

    def test_a_wrongly_typed_body_is_422(self, client: TestClient, keys: Keys) -> None:
        response = client.post(
            "/v1/ratings", json={"user_id": "me", "movie_id": 1, "rating": 7}, headers=keys.write
        )
        body = assert_problem(response, 422)
        assert {("body", "user_id"), ("body", "rating")} <= {tuple(e["loc"]) for e in body["errors"]}
        assert "input" not in body["errors"][0]

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/v1/admin/api-keys", {"name": "nul\u0000byte", "scopes": ["read"]}),
            ("/v1/users", {"external_id": "nul\u0000byte"}),
        ],
    )
    def test_text_the_database_cannot_store_is_422_not_500(
        self, client: TestClient, keys: Keys, path: str, body: dict[str, Any]
    ) -> None:
        # found by the schema fuzzer: PostgreSQL text cannot hold NUL characters
        problem = assert_problem(client.post(path, json=body, headers=keys.admin), 422)
        assert "SQL" not in problem["detail"]
        assert "psycopg" not in problem["detail"]

    def test_malformed_json_is_422(self, client: TestClient, keys: Keys) -> None:
        response = client.post(
            "/v1/ratings", content=b"{not json", headers={**keys.write, "Content-Type": "application/json"}
        )
        assert_problem(response, 422)

    def test_weights_must_sum_to_100(self, client: TestClient, keys: Keys) -> None:
        response = client.post(
            "/v1/experiments",
            json={
                "name": "bad-weights",
                "variants": [{"name": "a", "weight": 60}, {"name": "b", "weight": 60}],
            },
            headers=keys.admin,
        )
        body = assert_problem(response, 422)
        assert "sum to 100" in body["errors"][0]["msg"]

    def test_an_oversized_body_is_413(self, client: TestClient, keys: Keys) -> None:
        payload = b'{"liked": ["' + b"x" * (1024 * 1024 + 10) + b'"]}'
        response = client.post(
            "/v1/recommendations/from-titles",
            content=payload,
            headers={**keys.read, "Content-Type": "application/json"},
        )
        body = assert_problem(response, 413)
        assert "1048576 bytes" in body["detail"]

    def test_an_oversized_body_without_content_length_is_413(self, client: TestClient, keys: Keys) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"liked": ["'
            for _ in range(20):
                yield b"x" * 65536
            yield b'"]}'

        response = client.post(
            "/v1/recommendations/from-titles",
            content=chunks(),
            headers={**keys.read, "Content-Type": "application/json"},
        )
        assert_problem(response, 413)


class TestRouting:
    def test_an_unknown_path_is_404(self, client: TestClient) -> None:
        assert_problem(client.get("/v1/nothing-here"), 404)

    def test_an_unknown_experiment_is_404(self, client: TestClient, keys: Keys) -> None:
        body = assert_problem(client.get("/v1/experiments/2147483647", headers=keys.admin), 404)
        assert body["title"] == "Experiment not found"
        assert body["instance"] == "/v1/experiments/2147483647"

    def test_a_wrong_method_is_405_with_allow(self, client: TestClient) -> None:
        response = client.put("/v1/ratings")
        assert_problem(response, 405)
        assert "POST" in response.headers["Allow"]


class TestUnexpectedErrors:
    def test_a_bug_is_a_generic_500_without_internals(self, app: FastAPI, keys: Keys) -> None:
        # given: an endpoint that fails the way a bug would
        def explode() -> None:
            raise RuntimeError("SELECT secret FROM internals; Traceback: password=hunter2")

        app.add_api_route("/v1/explode", explode)
        with TestClient(app, raise_server_exceptions=False) as client:
            # when
            response = client.get("/v1/explode")
        # then
        body = assert_problem(response, 500)
        assert (
            "SELECT" not in response.text
            and "hunter2" not in response.text
            and "Traceback" not in response.text
        )
        assert body["detail"] == "Something went wrong on our side; it has been logged."
        assert response.headers["X-Request-ID"]
