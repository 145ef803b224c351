from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Event
from tests.api.conftest import Keys
from tests.api.factories import create_experiment


class TestEvents:
    def test_an_event_gets_the_experiment_and_variant_of_its_request(
        self, app: FastAPI, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        # given: a list served inside an experiment, which has stopped since
        experiment = create_experiment(client, keys.admin)
        served = client.get("/v1/users/5/recommendations?k=3", headers=keys.read).json()
        client.post(f"/v1/experiments/{experiment['id']}/stop", headers=keys.admin)
        # when
        response = client.post(
            "/v1/events",
            json={
                "type": "click",
                "user_id": 5,
                "movie_id": served["items"][0]["id"],
                "request_id": served["request_id"],
                "position": 0,
            },
            headers=keys.write,
        )
        # then
        assert response.status_code == 202, response.text
        stored = response.json()["events"][0]
        assert stored["experiment_id"] == experiment["id"]
        assert stored["variant_id"] == served["variant"]["id"]
        row = db_session.scalars(select(Event).where(Event.id == stored["id"])).one()
        assert (row.event_type, row.user_id, row.position) == ("click", 5, 0)
        assert str(row.request_id) == served["request_id"]

    def test_a_batch_of_events(self, client: TestClient, keys: Keys) -> None:
        experiment = create_experiment(client, keys.admin)
        events = [{"type": "impression", "user_id": u, "movie_id": 1, "position": 0} for u in range(1, 6)]
        response = client.post("/v1/events", json=events, headers=keys.write)
        assert response.status_code == 202
        body = response.json()
        assert body["accepted"] == 5
        assert {e["experiment_id"] for e in body["events"]} == {experiment["id"]}

    def test_without_experiment_or_request(self, client: TestClient, keys: Keys) -> None:
        old = (datetime.now(UTC) - timedelta(days=30)).isoformat()
        response = client.post(
            "/v1/events",
            json={
                "type": "rating",
                "user_id": 1,
                "movie_id": 1,
                "value": 4.5,
                "occurred_at": old,
                "request_id": str(uuid4()),
            },
            headers=keys.write,
        )
        assert response.status_code == 202
        assert response.json()["events"][0]["experiment_id"] is None

    def test_implausible_events_are_refused(self, client: TestClient, keys: Keys) -> None:
        for event in (
            {"type": "purchase", "user_id": 1},
            {"type": "click", "user_id": 1, "occurred_at": "2026-01-01T00:00:00"},  # no time zone
            {"type": "click", "user_id": 1, "position": -1},
            {"type": "click", "user_id": True},
            {"type": "click", "user_id": "7"},
        ):
            assert client.post("/v1/events", json=event, headers=keys.write).status_code == 422, event
        assert client.post("/v1/events", json=[], headers=keys.write).status_code == 422

    def test_a_time_in_the_future_becomes_the_time_of_receipt(
        self, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        future = datetime.now(UTC) + timedelta(days=1)
        response = client.post(
            "/v1/events",
            json={"type": "view", "user_id": 1, "occurred_at": future.isoformat()},
            headers=keys.write,
        )
        row = db_session.scalars(select(Event).where(Event.id == response.json()["events"][0]["id"])).one()
        assert row.occurred_at < future - timedelta(hours=23)

    def test_needs_the_write_scope(self, client: TestClient, keys: Keys) -> None:
        assert (
            client.post("/v1/events", json={"type": "click", "user_id": 1}, headers=keys.read).status_code
            == 403
        )
