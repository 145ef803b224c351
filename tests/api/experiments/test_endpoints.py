from __future__ import annotations

import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Assignment
from ml.datasets import Dataset
from services.api.experiments.service import EXPOSURE_QUEUE_KEY, ExposureLog, bucket_of
from services.api.metrics import Metrics
from services.api.redis_guard import RedisGuard, create_redis_client
from tests.api.conftest import Keys, state_of
from tests.api.factories import create_experiment
from tests.conftest import free_port


class TestExperimentLifecycle:
    def test_create_start_stop(self, client: TestClient, keys: Keys) -> None:
        # when
        draft = create_experiment(client, keys.admin, name="hybrid-vs-svd", start=False)
        started = client.post(f"/v1/experiments/{draft['id']}/start", headers=keys.admin)
        stopped = client.post(f"/v1/experiments/{draft['id']}/stop", headers=keys.admin)
        # then
        assert draft["status"] == "draft" and len(draft["salt"]) == 16
        assert [v["config"]["strategy"] for v in draft["variants"]] == ["svd", "hybrid"]
        assert started.json()["status"] == "running" and started.json()["started_at"]
        assert stopped.json()["status"] == "stopped" and stopped.json()["stopped_at"]
        assert client.get(f"/v1/experiments/{draft['id']}", headers=keys.admin).json()["status"] == "stopped"
        listed = client.get("/v1/experiments?status=stopped", headers=keys.admin).json()
        assert draft["id"] in [e["id"] for e in listed["items"]] and listed["total"] >= 1

    def test_only_one_experiment_runs_at_a_time(self, client: TestClient, keys: Keys) -> None:
        create_experiment(client, keys.admin)
        second = create_experiment(client, keys.admin, start=False)
        response = client.post(f"/v1/experiments/{second['id']}/start", headers=keys.admin)
        assert response.status_code == 409
        assert "stop it first" in response.json()["detail"]

    def test_a_stopped_experiment_cannot_restart(self, client: TestClient, keys: Keys) -> None:
        experiment = create_experiment(client, keys.admin)
        client.post(f"/v1/experiments/{experiment['id']}/stop", headers=keys.admin)
        assert client.post(f"/v1/experiments/{experiment['id']}/start", headers=keys.admin).status_code == 409
        assert client.post(f"/v1/experiments/{experiment['id']}/stop", headers=keys.admin).status_code == 409

    def test_a_taken_name_is_409(self, client: TestClient, keys: Keys) -> None:
        create_experiment(client, keys.admin, name="same-name", start=False)
        body = {"name": "same-name", "variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]}
        assert client.post("/v1/experiments", json=body, headers=keys.admin).status_code == 409

    def test_a_variant_serving_a_missing_model_version_is_refused(
        self, client: TestClient, keys: Keys
    ) -> None:
        body = {
            "name": "missing-model",
            "variants": [
                {"name": "a", "weight": 50},
                {"name": "b", "weight": 50, "config": {"model_version": "hybrid-19990101T000000-deadbeef"}},
            ],
        }
        response = client.post("/v1/experiments", json=body, headers=keys.admin)
        assert response.status_code == 422
        assert "does not exist" in response.json()["detail"]

    def test_unsafe_model_versions_are_invalid(self, client: TestClient, keys: Keys) -> None:
        body = {
            "name": "traversal",
            "variants": [
                {"name": "a", "weight": 50},
                {"name": "b", "weight": 50, "config": {"model_version": "../x"}},
            ],
        }
        assert client.post("/v1/experiments", json=body, headers=keys.admin).status_code == 422


class TestAssignmentEndpoint:
    def test_matches_the_bucket_and_weights(self, client: TestClient, keys: Keys) -> None:
        experiment = create_experiment(client, keys.admin, salt="fixed-salt")
        body = client.get("/v1/users/42/assignment", headers=keys.read).json()
        bucket = bucket_of("fixed-salt", 42)
        assert body["bucket"] == bucket
        assert body["experiment"]["id"] == experiment["id"]
        assert body["variant"]["name"] == ("control" if bucket < 5000 else "treatment")
        assert client.get("/v1/users/42/assignment", headers=keys.read).json() == body

    def test_no_running_experiment(self, client: TestClient, keys: Keys) -> None:
        body = client.get("/v1/users/42/assignment", headers=keys.read).json()
        assert body == {"user_id": 42, "experiment": None, "variant": None, "bucket": None, "config": None}


class TestExposures:
    def test_are_logged_once_per_user_in_batches(
        self,
        app: FastAPI,
        client: TestClient,
        keys: Keys,
        db_session: Session,
        api_redis: redis.Redis,
        api_dataset: Dataset,
    ) -> None:
        # given
        experiment = create_experiment(client, keys.admin)
        users = [int(u) for u in api_dataset.ratings["user_id"].unique()[:3]]
        # when: each user is served twice
        for user_id in users * 2:
            assert (
                client.get(f"/v1/users/{user_id}/recommendations?k=3", headers=keys.read).status_code == 200
            )
        exposures = state_of(app).exposures
        pending = exposures.pending()
        written = exposures.flush()
        # then
        assert pending == 3 and written == 3
        rows = db_session.scalars(
            select(Assignment).where(Assignment.experiment_id == experiment["id"])
        ).all()
        assert sorted(row.user_id for row in rows) == sorted(users)
        assert all(row.bucket == bucket_of(experiment["salt"], row.user_id) for row in rows)
        assert api_redis.llen(EXPOSURE_QUEUE_KEY) == 0
        metrics = client.get("/metrics").text
        assert f'movierec_ab_exposures_total{{experiment="{experiment["name"]}"' in metrics

    def test_another_instance_does_not_log_them_again(
        self, app: FastAPI, client: TestClient, keys: Keys, db_session: Session, api_dataset: Dataset
    ) -> None:
        # given: a user exposed and flushed by this instance
        create_experiment(client, keys.admin)
        user_id = int(api_dataset.ratings["user_id"].iloc[0])
        client.get(f"/v1/users/{user_id}/recommendations", headers=keys.read)
        state = state_of(app)
        state.exposures.flush()
        assignment = state.experiments.assign(user_id)
        assert assignment is not None
        # when: a second instance (its own memory) serves the same user
        other = ExposureLog(state.redis, state.session_factory, Metrics())
        other.record(assignment, user_id)
        # then
        assert other.flush() == 0

    def test_without_redis_they_go_straight_to_the_database(
        self, app: FastAPI, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        create_experiment(client, keys.admin)
        state = state_of(app)
        dead = RedisGuard(create_redis_client(f"redis://127.0.0.1:{free_port()}/0", timeout=0.1))
        log = ExposureLog(dead, state.session_factory, Metrics())
        for user_id in (11, 12):
            assignment = state.experiments.assign(user_id)
            assert assignment is not None
            log.record(assignment, user_id)
        assert log.flush() == 2
        assert log.flush() == 0
