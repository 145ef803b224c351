"""The real `get_session` path: one transaction per request, committed before the response is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from db.migrate import upgrade
from db.models import AppUser, IdempotencyKey
from db.session import create_db_engine
from services.api.auth.service import ADMIN_KEY_FILE
from services.api.main import create_app
from tests.api.conftest import api_settings


@pytest.fixture
def scratch_engine(scratch_database_url: str) -> Iterator[Engine]:
    upgrade(scratch_database_url)
    engine = create_db_engine(scratch_database_url, "test")
    yield engine
    engine.dispose()


@pytest.fixture
def committing_client(
    scratch_database_url: str,
    scratch_engine: Engine,
    api_redis: redis.Redis,
    api_redis_url: str,
    tmp_path: Path,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An app on its own database with a real engine: requests commit for real."""
    with TestClient(create_app(api_settings(scratch_database_url, api_redis_url, tmp_path))) as client:
        yield client, {"X-API-Key": (tmp_path / ADMIN_KEY_FILE).read_text().strip()}


def count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


class TestRequestTransaction:
    def test_a_successful_request_is_committed(
        self, committing_client: tuple[TestClient, dict[str, str]], scratch_engine: Engine
    ) -> None:
        client, admin = committing_client
        response = client.post("/v1/users", json={"external_id": "committed"}, headers=admin)
        assert response.status_code == 201
        with scratch_engine.connect() as connection:
            stored = connection.scalar(select(AppUser.external_id).where(AppUser.id == response.json()["id"]))
        assert stored == "committed"

    def test_a_failed_request_is_rolled_back_entirely(
        self, committing_client: tuple[TestClient, dict[str, str]], scratch_engine: Engine
    ) -> None:
        # given: a user, and a request that claims an idempotency key before failing
        client, admin = committing_client
        user_id = client.post("/v1/users", json={}, headers=admin).json()["id"]
        # when
        response = client.post(
            "/v1/ratings",
            json={"user_id": user_id, "movie_id": 1, "rating": 4},
            headers={**admin, "Idempotency-Key": "rolled-back"},
        )
        # then: no movie 1 in this empty catalog, so 404, and the key's row went with the transaction
        assert response.status_code == 404
        assert count(scratch_engine, IdempotencyKey) == 0

    def test_a_failed_commit_is_an_error_not_a_success(
        self, committing_client: tuple[TestClient, dict[str, str]], scratch_engine: Engine
    ) -> None:
        # given: a constraint checked only at commit time
        with scratch_engine.begin() as connection:
            connection.execute(
                text(
                    "ALTER TABLE app_user ADD CONSTRAINT zip_once UNIQUE (zip_code) DEFERRABLE INITIALLY DEFERRED"
                )
            )
        client, admin = committing_client
        assert client.post("/v1/users", json={"zip_code": "02139"}, headers=admin).status_code == 201
        before = count(scratch_engine, AppUser)
        # when: the insert succeeds, the commit fails
        response = client.post("/v1/users", json={"zip_code": "02139"}, headers=admin)
        # then
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert "zip_once" not in response.text
        assert count(scratch_engine, AppUser) == before
