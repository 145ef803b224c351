from __future__ import annotations

import json

import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from db.models import ModelVersion
from services.live_model import LiveModel
from tests.api.conftest import Keys


class TestRetrain:
    def test_queues_the_retrain_task(self, client: TestClient, keys: Keys, api_redis: redis.Redis) -> None:
        # when
        response = client.post("/v1/admin/retrain", headers=keys.admin)
        # then
        assert response.status_code == 202
        body = response.json()
        assert body["task_name"] == "movierec.retrain"
        queued = api_redis.lindex("celery", 0)  # the default queue, as the worker reads it
        assert queued is not None
        message = json.loads(queued)
        assert message["headers"]["task"] == "movierec.retrain"
        assert message["headers"]["id"] == body["task_id"]
        status = client.get(body["status_url"], headers=keys.admin)
        assert status.status_code == 200
        assert status.json()["state"] == "PENDING"

    def test_needs_the_admin_scope(self, client: TestClient, keys: Keys) -> None:
        assert client.post("/v1/admin/retrain", headers=keys.read_write).status_code == 403


class TestModels:
    def test_lists_models_the_champion_and_the_live_pointer(
        self, client: TestClient, keys: Keys, db_session: Session, live_model: LiveModel
    ) -> None:
        # given
        db_session.add_all(
            [
                ModelVersion(
                    name="movierec", version=1, status="archived", metrics={"hybrid.ndcg_at_10": 0.3}
                ),
                ModelVersion(
                    name="movierec", version=2, status="champion", metrics={"hybrid.ndcg_at_10": 0.4}
                ),
            ]
        )
        db_session.commit()
        # when
        body = client.get("/v1/admin/models", headers=keys.admin).json()
        # then
        assert body["live"]["version"] == live_model.version
        assert body["served_version"] == live_model.version
        assert body["loaded_versions"] == [live_model.version]
        assert body["champion"]["version"] == 2
        assert [m["version"] for m in body["versions"]][:2] == [2, 1]
