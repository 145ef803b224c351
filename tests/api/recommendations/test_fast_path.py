"""The fast path of `GET /v1/users/{user_id}/recommendations`: what it takes, and that its answers
are the framework's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ml.datasets import Dataset
from services.api.main import create_app
from services.api.recommendations.fast_path import parse_user_list_request
from services.api.recommendations.user_list import UserListQuery
from services.live_model import LiveModel
from services.settings import Settings
from tests.api.conftest import Keys, state_of
from tests.api.recommendations.test_endpoints import known_user


class TestParse:
    @pytest.mark.parametrize(
        ("path", "query", "expected"),
        [
            ("/v1/users/7/recommendations", b"", UserListQuery(7)),
            ("/v1/users/7/recommendations", b"k=25", UserListQuery(7, k=25)),
            ("/v1/users/7/recommendations", b"k=100&genre=Film-Noir", UserListQuery(7, 100, "Film-Noir")),
            ("/v1/users/7/recommendations", b"genre=Sci%2DFi&k=1", UserListQuery(7, 1, "Sci-Fi")),
            ("/v1/users/7/recommendations", b"exclude_seen=false", UserListQuery(7, exclude_seen=False)),
            ("/v1/users/7/recommendations", b"exclude_seen=TRUE", UserListQuery(7, exclude_seen=True)),
            ("/v1/users/9007199254740991/recommendations", b"", UserListQuery(2**53 - 1)),
        ],
    )
    def test_takes_plainly_valid_requests(self, path: str, query: bytes, expected: UserListQuery) -> None:
        assert parse_user_list_request(path, query) == expected

    @pytest.mark.parametrize(
        ("path", "query"),
        [
            ("/v1/users/0/recommendations", b""),  # ids start at 1
            ("/v1/users/9007199254740992/recommendations", b""),  # past 2^53 - 1
            ("/v1/users/-1/recommendations", b""),
            ("/v1/users/7/recommendations/", b""),  # the framework redirects
            ("/v1/users/7/similar", b""),
            ("/v1/users/7/recommendations", b"k=0"),
            ("/v1/users/7/recommendations", b"k=101"),
            ("/v1/users/7/recommendations", b"k=ten"),
            ("/v1/users/7/recommendations", b"k=+5"),
            ("/v1/users/7/recommendations", b"k=5&k=6"),  # repeated
            ("/v1/users/7/recommendations", b"genre="),
            ("/v1/users/7/recommendations", b"genre=" + b"a" * 51),
            ("/v1/users/7/recommendations", b"genre=Drama%00"),
            ("/v1/users/7/recommendations", b"exclude_seen=yes"),  # the framework's bool parsing decides
            ("/v1/users/7/recommendations", b"genres=Drama"),  # unknown: the framework refuses it
        ],
    )
    def test_leaves_anything_else_to_the_framework(self, path: str, query: bytes) -> None:
        assert parse_user_list_request(path, query) is None


@pytest.fixture
def slow_app(settings: Settings, db_session: Session, live_model: LiveModel) -> FastAPI:
    """The same app without the fast path, on the same database transaction and Redis."""
    factory = sessionmaker(
        bind=db_session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    return create_app(settings.model_copy(update={"API_FAST_PATH": False}), session_factory=factory)


@pytest.fixture
def slow_client(slow_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(slow_app, raise_server_exceptions=False) as test_client:
        yield test_client


def comparable(response: httpx.Response) -> tuple[int, str, Any, set[str]]:
    """A response without what differs between two identical requests (the request id)."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    headers = {name for name in response.headers if name.startswith("x-ratelimit") or name == "retry-after"}
    return response.status_code, response.headers["content-type"], body, headers


def fast_path_count(app: FastAPI) -> float:
    return state_of(app).metrics.fast_path._value.get()


class TestSameAnswers:
    @pytest.mark.parametrize(
        "query",
        [
            "",
            "?k=3",
            "?k=100",
            "?k=5&genre=comedy",
            "?k=4&exclude_seen=false",
            "?genre=Western&exclude_seen=0&k=2",
            "?genre=Opera",  # unknown genre: a 404 raised inside the endpoint's code
        ],
    )
    def test_as_the_framework(
        self,
        query: str,
        app: FastAPI,
        client: TestClient,
        slow_client: TestClient,
        keys: Keys,
        api_dataset: Dataset,
    ) -> None:
        # given: a key the app verified once (the fast path only takes keys it knows)
        user_id = known_user(api_dataset)
        assert client.get("/v1/movies/1", headers=keys.read).status_code == 200
        path = f"/v1/users/{user_id}/recommendations{query}"
        slow_client.get(path, headers=keys.read)  # computes and caches the list if it is a miss
        served_fast = fast_path_count(app)
        # when
        slow = slow_client.get(path, headers=keys.read)
        fast = client.get(path, headers=keys.read)
        # then
        assert fast_path_count(app) == served_fast + 1
        assert comparable(fast) == comparable(slow)
        assert fast.headers["x-request-id"] != slow.headers["x-request-id"]
        if fast.status_code == 200:
            assert fast.json()["request_id"] == fast.headers["x-request-id"]

    def test_a_cold_start_user_and_the_metrics_route(
        self, app: FastAPI, client: TestClient, slow_client: TestClient, keys: Keys
    ) -> None:
        client.get("/v1/movies/1", headers=keys.read)
        computed = client.get("/v1/users/800000000001/recommendations?k=6", headers=keys.read)
        slow = slow_client.get("/v1/users/800000000001/recommendations?k=6", headers=keys.read)
        fast = client.get("/v1/users/800000000001/recommendations?k=6", headers=keys.read)
        assert (computed.json()["source"], fast.json()["source"]) == ("model", "cache")
        assert fast.json()["cold_start"] is True
        assert comparable(fast) == comparable(slow)
        metrics = client.get("/metrics").text
        assert (
            'movierec_http_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",'
            'status="200"} 2.0' in metrics
        )
        assert "movierec_fast_path_requests_total 2.0" in metrics


class TestLeftToTheFramework:
    @pytest.mark.parametrize(
        ("query", "headers", "status"),
        [
            ("?k=0", "read", 422),
            ("?k=ten", "read", 422),
            ("?genres=Drama", "read", 422),
            ("?exclude_seen=yes", "read", 200),
            ("", None, 401),
            ("", "write", 403),
            ("", "unknown", 401),
        ],
    )
    def test_odd_requests_get_the_frameworks_answer(
        self,
        query: str,
        headers: str | None,
        status: int,
        app: FastAPI,
        client: TestClient,
        keys: Keys,
    ) -> None:
        known = {"read": keys.read, "write": keys.write, "unknown": {"X-API-Key": "mr_" + "x" * 40}}
        sent = known.get(headers or "", {})
        if sent:
            client.get("/v1/movies/1", headers=sent)  # cached, if the key is known at all
        before = fast_path_count(app)
        response = client.get(f"/v1/users/1/recommendations{query}", headers=sent)
        assert response.status_code == status
        assert fast_path_count(app) == before
        if status != 200:
            assert response.headers["content-type"] == "application/problem+json"

    def test_over_the_rate_limit_is_a_429_problem(
        self, settings: Settings, db_session: Session, live_model: LiveModel, keys: Keys
    ) -> None:
        factory = sessionmaker(
            bind=db_session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        limited = create_app(
            settings.model_copy(update={"API_RATE_LIMIT_PER_MINUTE": 3}), session_factory=factory
        )
        with TestClient(limited, raise_server_exceptions=False) as client:
            statuses = [client.get("/v1/users/1/recommendations", headers=keys.read) for _ in range(5)]
        assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
        assert fast_path_count(limited) == 4  # the first request verified the key in the database
        refused = statuses[-1]
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert refused.json()["status"] == 429
