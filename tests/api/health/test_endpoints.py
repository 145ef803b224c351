from __future__ import annotations

from fastapi.testclient import TestClient

from ml.datasets import Dataset
from services.live_model import LiveModel
from tests.api.conftest import Keys


def test_liveness(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_readiness(client: TestClient, live_model: LiveModel) -> None:
    body = client.get("/ready").json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "ok", "model": "ok"}
    assert body["model_version"] == live_model.version


def test_metrics(client: TestClient, keys: Keys, live_model: LiveModel, api_dataset: Dataset) -> None:
    # given
    user_id = int(api_dataset.ratings["user_id"].iloc[0])
    for _ in range(2):
        client.get(f"/v1/users/{user_id}/recommendations", headers=keys.read)
    client.get("/v1/users/1/recommendations?k=1000", headers=keys.read)
    # when
    response = client.get("/metrics")
    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = 'route="/v1/users/{user_id}/recommendations"'
    assert f'movierec_http_request_duration_seconds_bucket{{le="0.005",method="GET",{route}}}' in text
    assert f'movierec_http_requests_total{{method="GET",{route},status="200"}} 2.0' in text
    assert f'movierec_http_requests_total{{method="GET",{route},status="422"}} 1.0' in text
    assert 'movierec_recommendation_cache_total{result="hit"} 1.0' in text
    assert 'movierec_recommendation_cache_total{result="miss"} 1.0' in text
    assert f'movierec_model_info{{version="{live_model.version}"}} 1.0' in text
    assert "movierec_redis_available 1.0" in text


def test_cors_preflight_for_a_configured_origin(client: TestClient) -> None:
    response = client.options(
        "/v1/users/1/recommendations",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    other = client.options(
        "/v1/users/1/recommendations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers
