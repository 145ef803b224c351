from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AppUser, Rating
from tests.api.conftest import Keys
from tests.api.factories import create_user


class TestCreateUser:
    def test_creates_a_user(self, client: TestClient, keys: Keys) -> None:
        response = client.post("/v1/users", json={"external_id": "customer-1", "age": 34}, headers=keys.write)
        assert response.status_code == 201
        body = response.json()
        assert body["external_id"] == "customer-1" and body["age"] == 34 and body["id"] > 0
        fetched = client.get(f"/v1/users/{body['id']}", headers=keys.read)
        assert fetched.json() == body

    def test_a_taken_external_id_is_409(self, client: TestClient, keys: Keys) -> None:
        client.post("/v1/users", json={"external_id": "twice"}, headers=keys.write)
        response = client.post("/v1/users", json={"external_id": "twice"}, headers=keys.write)
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"

    def test_unknown_fields_are_refused(self, client: TestClient, keys: Keys) -> None:
        assert client.post("/v1/users", json={"name": "Ann"}, headers=keys.write).status_code == 422


class TestRatings:
    def test_upsert_creates_then_replaces(self, client: TestClient, keys: Keys, db_session: Session) -> None:
        # given
        user = create_user(db_session)
        db_session.commit()
        # when
        first = client.post(
            "/v1/ratings", json={"user_id": user.id, "movie_id": 1, "rating": 3}, headers=keys.write
        )
        second = client.post(
            "/v1/ratings", json={"user_id": user.id, "movie_id": 1, "rating": 4.5}, headers=keys.write
        )
        # then
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json()["rating"] == 4.5
        stored = db_session.scalars(select(Rating.rating).where(Rating.user_id == user.id)).all()
        assert stored == [4.5]
        page = client.get(f"/v1/users/{user.id}/ratings", headers=keys.read).json()
        assert page["total"] == 1 and page["items"][0]["movie_id"] == 1

    def test_ratings_go_by_half_stars(self, client: TestClient, keys: Keys) -> None:
        for value in (0, 5.5, 3.3):
            response = client.post(
                "/v1/ratings", json={"user_id": 1, "movie_id": 1, "rating": value}, headers=keys.write
            )
            assert response.status_code == 422

    def test_an_unknown_user_or_movie_is_404(self, client: TestClient, keys: Keys) -> None:
        response = client.post(
            "/v1/ratings", json={"user_id": 10**15, "movie_id": 1, "rating": 3}, headers=keys.write
        )
        assert response.status_code == 404
        assert response.json()["title"] == "User not found"
        response = client.post(
            "/v1/ratings", json={"user_id": 1, "movie_id": 10**15, "rating": 3}, headers=keys.write
        )
        assert response.json()["title"] == "Movie not found"


class TestIdempotency:
    def test_a_retried_post_is_replayed_not_repeated(
        self, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        # given
        headers = {**keys.write, "Idempotency-Key": "c0ffee00-0000-4000-8000-000000000001"}
        count_before = db_session.scalar(select(func.count()).select_from(AppUser)) or 0
        # when
        first = client.post("/v1/users", json={"age": 30}, headers=headers)
        retry = client.post("/v1/users", json={"age": 30}, headers=headers)
        # then
        assert first.status_code == retry.status_code == 201
        assert first.json() == retry.json()
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert db_session.scalar(select(func.count()).select_from(AppUser)) == count_before + 1

    def test_a_replayed_rating_keeps_its_first_status(
        self, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        user = create_user(db_session)
        db_session.commit()
        headers = {**keys.write, "Idempotency-Key": "rating-1"}
        body = {"user_id": user.id, "movie_id": 2, "rating": 4}
        assert client.post("/v1/ratings", json=body, headers=headers).status_code == 201
        assert client.post("/v1/ratings", json=body, headers=headers).status_code == 201

    def test_reusing_a_key_for_another_body_is_422(self, client: TestClient, keys: Keys) -> None:
        headers = {**keys.write, "Idempotency-Key": "same-key"}
        client.post("/v1/users", json={"age": 30}, headers=headers)
        response = client.post("/v1/users", json={"age": 31}, headers=headers)
        assert response.status_code == 422
        assert response.json()["title"] == "Idempotency key reused"

    def test_keys_are_per_api_key(self, client: TestClient, keys: Keys) -> None:
        first = client.post("/v1/users", json={}, headers={**keys.write, "Idempotency-Key": "shared"})
        second = client.post("/v1/users", json={}, headers={**keys.read_write, "Idempotency-Key": "shared"})
        assert first.json()["id"] != second.json()["id"]

    def test_a_failed_request_does_not_use_up_its_key(
        self, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        # given: a request that failed with this key
        headers = {**keys.write, "Idempotency-Key": "retry-after-fix"}
        user = create_user(db_session)
        db_session.commit()
        failed = client.post(
            "/v1/ratings", json={"user_id": user.id, "movie_id": 10**15, "rating": 3}, headers=headers
        )
        assert failed.status_code == 404
        # when: the client fixes the request and sends it with the same key
        fixed = client.post(
            "/v1/ratings", json={"user_id": user.id, "movie_id": 1, "rating": 3}, headers=headers
        )
        retried = client.post(
            "/v1/ratings", json={"user_id": user.id, "movie_id": 1, "rating": 3}, headers=headers
        )
        # then: the failure was rolled back with its claim on the key
        assert fixed.status_code == 201
        assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
