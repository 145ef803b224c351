from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from db.session import create_db_engine, create_session_factory
from ml.artifact import TrainResult
from ml.datasets import Dataset
from services.api.main import create_app
from services.live_model import LiveModel, recommendations_key
from tests.api.conftest import Keys, api_settings, state_of
from tests.api.factories import create_experiment, create_user, precompute
from tests.conftest import free_port


def known_user(dataset: Dataset) -> int:
    return int(dataset.ratings["user_id"].iloc[0])


def movie_ids(response_json: dict) -> list[int]:
    return [item["id"] for item in response_json["items"]]


class TestUserRecommendations:
    def test_a_miss_is_computed_and_cached_then_served_from_the_cache(
        self,
        client: TestClient,
        keys: Keys,
        api_redis: redis.Redis,
        live_model: LiveModel,
        api_dataset: Dataset,
    ) -> None:
        # given
        user_id = known_user(api_dataset)
        # when
        first = client.get(f"/v1/users/{user_id}/recommendations?k=5", headers=keys.read)
        second = client.get(f"/v1/users/{user_id}/recommendations?k=5", headers=keys.read)
        # then
        assert first.status_code == second.status_code == 200
        assert (first.json()["source"], second.json()["source"]) == ("model", "cache")
        assert movie_ids(first.json()) == movie_ids(second.json())
        assert len(movie_ids(first.json())) == 5
        key = recommendations_key(live_model.version, user_id)
        assert api_redis.hexists(key, "hybrid")
        assert 0 < api_redis.ttl(key) <= 3600
        body = second.json()
        assert body["model_version"] == live_model.version
        assert body["strategy"] == "hybrid"
        assert body["cold_start"] is False
        assert body["request_id"] == second.headers["X-Request-ID"]
        assert {"id", "title", "year", "genres", "score", "explanation"} <= set(body["items"][0])

    def test_serves_the_list_the_worker_precomputed(
        self,
        client: TestClient,
        keys: Keys,
        api_redis: redis.Redis,
        live_model: LiveModel,
        api_dataset: Dataset,
    ) -> None:
        # given
        user_id = known_user(api_dataset)
        items = [(3, 0.9, "because you liked Heat"), (1, 0.8, "popular"), (2, 0.7, "popular")]
        precompute(api_redis, version=live_model.version, user_id=user_id, strategy="hybrid", items=items)
        # when
        response = client.get(f"/v1/users/{user_id}/recommendations?k=2", headers=keys.read)
        # then
        assert response.status_code == 200
        body = response.json()
        assert body["source"] == "cache"
        assert [(i["id"], i["score"], i["explanation"]) for i in body["items"]] == items[:2]
        assert (
            api_redis.ttl(recommendations_key(live_model.version, user_id)) == -1
        )  # the worker's TTL is kept

    def test_an_unknown_user_gets_a_cold_start_list_not_a_404(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/users/900000000000/recommendations?k=7", headers=keys.read)
        assert response.status_code == 200
        assert response.json()["cold_start"] is True
        assert len(response.json()["items"]) == 7
        again = client.get("/v1/users/900000000000/recommendations?k=7", headers=keys.read)
        assert again.json()["source"] == "cache"
        assert again.json()["cold_start"] is True

    def test_a_new_rating_invalidates_the_cache_and_changes_the_list(
        self,
        client: TestClient,
        keys: Keys,
        api_redis: redis.Redis,
        live_model: LiveModel,
        db_session: Session,
        api_dataset: Dataset,
    ) -> None:
        # given: a new user's cold-start list, cached
        user = create_user(db_session)
        db_session.commit()
        before = client.get(f"/v1/users/{user.id}/recommendations?k=10", headers=keys.read).json()
        assert before["cold_start"] is True
        key = recommendations_key(live_model.version, user.id)
        assert api_redis.exists(key)
        # when: they rate a few movies of one genre
        horror_movies = (
            api_dataset.genres.loc[api_dataset.genres["genre"] == "Horror", "movie_id"].head(5).tolist()
        )
        for movie_id in horror_movies:
            rated = client.post(
                "/v1/ratings",
                json={"user_id": user.id, "movie_id": int(movie_id), "rating": 5},
                headers=keys.write,
            )
            assert rated.status_code == 201, rated.text
        # then: the cache is gone and the next list is computed from the new ratings
        assert not api_redis.exists(key)
        after = client.get(f"/v1/users/{user.id}/recommendations?k=10", headers=keys.read).json()
        assert after["source"] == "model"
        assert movie_ids(after) != movie_ids(before)
        assert not set(movie_ids(after)) & {int(m) for m in horror_movies}  # rated movies are left out

    def test_a_rating_removes_the_rated_movie_from_a_known_users_list(
        self, client: TestClient, keys: Keys, api_dataset: Dataset
    ) -> None:
        user_id = known_user(api_dataset)
        top = movie_ids(client.get(f"/v1/users/{user_id}/recommendations?k=5", headers=keys.read).json())[0]
        response = client.post(
            "/v1/ratings", json={"user_id": user_id, "movie_id": top, "rating": 2.5}, headers=keys.write
        )
        assert response.status_code in (200, 201)
        after = client.get(f"/v1/users/{user_id}/recommendations?k=5", headers=keys.read).json()
        assert top not in movie_ids(after)

    def test_genre_filter(self, client: TestClient, keys: Keys, api_dataset: Dataset) -> None:
        user_id = known_user(api_dataset)
        response = client.get(f"/v1/users/{user_id}/recommendations?k=5&genre=drama", headers=keys.read)
        assert response.status_code == 200
        assert response.json()["items"]
        assert all("Drama" in item["genres"] for item in response.json()["items"])

    def test_an_unknown_genre_is_a_problem(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/users/1/recommendations?genre=space-opera", headers=keys.read)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert "Comedy" in response.json()["detail"]

    def test_seen_movies_can_be_kept(
        self,
        client: TestClient,
        keys: Keys,
        api_redis: redis.Redis,
        live_model: LiveModel,
        api_dataset: Dataset,
    ) -> None:
        user_id = known_user(api_dataset)
        response = client.get(
            f"/v1/users/{user_id}/recommendations?k=5&exclude_seen=false", headers=keys.read
        )
        assert response.status_code == 200
        assert api_redis.hexists(recommendations_key(live_model.version, user_id), "hybrid|seen")

    def test_the_variant_strategy_picks_the_ranking(
        self,
        client: TestClient,
        keys: Keys,
        api_redis: redis.Redis,
        live_model: LiveModel,
        api_dataset: Dataset,
    ) -> None:
        # given: everyone in the SVD arm
        experiment = create_experiment(
            client,
            keys.admin,
            variants=[
                {"name": "svd", "weight": 100, "is_control": True, "config": {"strategy": "svd"}},
                {"name": "hybrid", "weight": 0, "config": {"strategy": "hybrid"}},
            ],
        )
        user_id = known_user(api_dataset)
        # when
        body = client.get(f"/v1/users/{user_id}/recommendations?k=5", headers=keys.read).json()
        # then
        assert body["strategy"] == "svd"
        assert body["experiment"] == {"id": experiment["id"], "name": experiment["name"]}
        assert body["variant"]["name"] == "svd"
        assert api_redis.hexists(recommendations_key(live_model.version, user_id), "svd")


class TestBatchRecommendations:
    def test_lists_for_each_user_in_order(self, client: TestClient, keys: Keys, api_dataset: Dataset) -> None:
        users = [int(u) for u in api_dataset.ratings["user_id"].unique()[:3]]
        response = client.post(
            "/v1/recommendations/batch", json={"user_ids": [*users, users[0]], "k": 3}, headers=keys.read
        )
        assert response.status_code == 200
        results = response.json()["results"]
        assert [r["user_id"] for r in results] == users
        assert all(len(r["items"]) == 3 for r in results)

    def test_is_bounded(self, client: TestClient, keys: Keys) -> None:
        response = client.post(
            "/v1/recommendations/batch", json={"user_ids": list(range(1, 102))}, headers=keys.read
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "user_ids"]


class TestFromTitles:
    def test_matches_typed_titles_and_recommends(
        self, client: TestClient, keys: Keys, api_dataset: Dataset
    ) -> None:
        # given
        movies = api_dataset.movies.set_index("movie_id")
        title = str(movies.loc[1, "title"])
        typo = title.lower().replace("e", "a", 1)
        # when
        response = client.post(
            "/v1/recommendations/from-titles",
            json={"liked": [title.lower(), typo, "zzqx wvvq"], "k": 5},
            headers=keys.read,
        )
        # then
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["matches"][0]["movie"]["id"] == 1
        assert body["matches"][0]["match_score"] == 100.0
        assert body["matches"][1]["movie"] is not None
        assert body["matches"][2] == {"query": "zzqx wvvq", "movie": None, "match_score": None}
        assert len(body["items"]) == 5
        assert 1 not in movie_ids(body)


class TestSimilarMovies:
    def test_similar_movies(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/movies/1/similar?k=4", headers=keys.read)
        assert response.status_code == 200
        body = response.json()
        assert body["movie"]["id"] == 1
        assert len(body["items"]) == 4
        assert 1 not in movie_ids(body)

    def test_an_unknown_movie_is_404(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/movies/99999999/similar", headers=keys.read)
        assert response.status_code == 404
        assert response.json()["title"] == "Movie not found"


class TestPredictedRating:
    def test_predicts_within_the_scale(self, client: TestClient, keys: Keys, api_dataset: Dataset) -> None:
        user_id = known_user(api_dataset)
        rated = api_dataset.ratings[api_dataset.ratings["user_id"] == user_id].iloc[0]
        response = client.get(
            f"/v1/users/{user_id}/movies/{int(rated.movie_id)}/predicted-rating", headers=keys.read
        )
        assert response.status_code == 200
        body = response.json()
        assert 0.5 <= body["predicted_rating"] <= 5
        assert body["current_rating"] == pytest.approx(float(rated.rating))

    def test_an_unknown_movie_is_404(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/users/1/movies/99999999/predicted-rating", headers=keys.read)
        assert response.status_code == 404


class TestWithoutModel:
    def test_recommendations_answer_503_until_a_model_is_live(
        self,
        api_redis: redis.Redis,
        db_session: Session,
        api_database_url: str,
        api_redis_url: str,
        api_data_dir: Path,
        keys: Keys,
    ) -> None:
        # given: no live pointer
        settings = api_settings(api_database_url, api_redis_url, api_data_dir)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        with TestClient(create_app(settings, session_factory=factory)) as client:
            # when
            response = client.get("/v1/users/1/recommendations", headers=keys.read)
            ready = client.get("/ready")
        # then
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["Retry-After"]) > 0
        assert ready.status_code == 503
        assert ready.json()["checks"]["model"] == "unavailable"


class TestWithoutRedis:
    @pytest.fixture
    def app_without_redis(
        self, db_session: Session, api_database_url: str, api_data_dir: Path, api_artifact: TrainResult
    ) -> Iterator[FastAPI]:
        settings = api_settings(api_database_url, f"redis://127.0.0.1:{free_port()}/0", api_data_dir)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        app = create_app(settings, session_factory=factory)
        yield app

    def test_still_recommends_and_says_degraded(
        self, app_without_redis: FastAPI, keys: Keys, api_artifact: TrainResult, api_dataset: Dataset
    ) -> None:
        with TestClient(app_without_redis) as client:
            # given: the model was loaded before Redis went away
            state_of(app_without_redis).models.set_live(
                LiveModel(version=api_artifact.model_version, artifact_dir=str(api_artifact.artifact_path))
            )
            user_id = known_user(api_dataset)
            # when
            started = time.perf_counter()
            responses = [
                client.get(f"/v1/users/{user_id}/recommendations?k=3", headers=keys.read) for _ in range(5)
            ]
            elapsed = time.perf_counter() - started
            ready = client.get("/ready")
            rated = client.post(
                "/v1/ratings", json={"user_id": user_id, "movie_id": 1, "rating": 4}, headers=keys.write
            )
        # then
        assert [r.status_code for r in responses] == [200] * 5
        assert {r.json()["source"] for r in responses} == {"model"}
        assert "X-RateLimit-Limit" not in responses[0].headers  # limits fail open
        assert elapsed < 2.0  # the breaker skips Redis instead of waiting for timeouts
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["redis"] == "unavailable"
        assert rated.status_code in (200, 201)
        assert user_id in state_of(app_without_redis).invalidations.take()  # retried once Redis is back


class TestWithoutDatabase:
    def test_cached_reads_still_work_and_writes_get_503(
        self,
        api_redis: redis.Redis,
        live_model: LiveModel,
        db_session: Session,
        api_database_url: str,
        api_redis_url: str,
        api_data_dir: Path,
        keys: Keys,
        api_dataset: Dataset,
    ) -> None:
        # given: a cached list and a verified key, then the database goes away
        settings = api_settings(api_database_url, api_redis_url, api_data_dir, API_AUTH_CACHE_TTL=0)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        app = create_app(settings, session_factory=factory)
        users = [int(u) for u in api_dataset.ratings["user_id"].unique()[:2]]
        dead = create_db_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/movierec", "test")
        with TestClient(app) as client:
            cached = client.get(f"/v1/users/{users[0]}/recommendations?k=3", headers=keys.read)
            state_of(app).session_factory = create_session_factory(dead)
            # when
            again = client.get(f"/v1/users/{users[0]}/recommendations?k=3", headers=keys.read)
            uncached = client.get(f"/v1/users/{users[1]}/recommendations?k=3", headers=keys.read)
            write = client.post(
                "/v1/ratings", json={"user_id": users[0], "movie_id": 1, "rating": 4}, headers=keys.write
            )
            ready = client.get("/ready")
        dead.dispose()
        # then
        assert cached.status_code == again.status_code == 200
        assert again.json()["source"] == "cache"
        assert movie_ids(again.json()) == movie_ids(cached.json())
        assert uncached.status_code == 200  # from the ratings the model was trained on, not cached
        assert not api_redis.hexists(recommendations_key(live_model.version, users[1]), "hybrid")
        assert write.status_code == 503
        assert write.headers["content-type"] == "application/problem+json"
        assert int(write.headers["Retry-After"]) > 0
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"


def test_cache_entries_use_the_contract_format(
    client: TestClient, keys: Keys, api_redis: redis.Redis, live_model: LiveModel, api_dataset: Dataset
) -> None:
    user_id = known_user(api_dataset)
    client.get(f"/v1/users/{user_id}/recommendations", headers=keys.read)
    raw = api_redis.hget(recommendations_key(live_model.version, user_id), "hybrid")
    assert raw is not None
    entries = json.loads(raw)
    assert len(entries) == 100
    movie_id, score, explanation = entries[0]
    assert isinstance(movie_id, int) and isinstance(score, float) and isinstance(explanation, str)
