"""A new live model is picked up without a restart, loaded off the request path and swapped atomically."""

from __future__ import annotations

import gc
import shutil
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from db.migrate import upgrade
from ml.artifact import TrainResult
from services.api.background import sync_live_model
from services.api.main import create_app
from services.api.recommendations.engine import LoadedModel, freeze_heap
from services.live_model import LiveModel, publish_live_model, recommendations_key
from tests.api.conftest import Keys, api_settings, state_of
from tests.api.factories import create_experiment

NEW_VERSION = "hybrid-20991231T000000-00000000"


@pytest.fixture(scope="module")
def new_version(api_artifact: TrainResult, api_data_dir: Path) -> str:
    """A second artifact (a copy of the first under a newer version)."""
    target = api_data_dir / "models" / NEW_VERSION
    if not target.exists():
        shutil.copytree(api_artifact.artifact_path, target)
    return NEW_VERSION


def test_the_next_requests_use_the_new_model(
    app: FastAPI,
    client: TestClient,
    keys: Keys,
    api_redis: redis.Redis,
    live_model: LiveModel,
    new_version: str,
) -> None:
    # given
    before = client.get("/v1/users/1/recommendations", headers=keys.read).json()
    assert before["model_version"] == live_model.version
    # when: the worker promotes a new version
    publish_live_model(api_redis, LiveModel(version=new_version, artifact_dir=""))
    assert sync_live_model(state_of(app))
    # then
    after = client.get("/v1/users/1/recommendations", headers=keys.read).json()
    assert after["model_version"] == new_version
    assert after["source"] == "model"  # the new version's cache starts empty
    assert api_redis.exists(recommendations_key(new_version, 1))
    assert state_of(app).models.versions() == [new_version, live_model.version]


def test_a_broken_artifact_keeps_the_old_model(
    app: FastAPI,
    client: TestClient,
    keys: Keys,
    api_redis: redis.Redis,
    live_model: LiveModel,
    tmp_path: Path,
) -> None:
    publish_live_model(api_redis, LiveModel(version="hybrid-broken", artifact_dir=str(tmp_path)))
    assert not sync_live_model(state_of(app))
    assert (
        client.get("/v1/users/1/recommendations", headers=keys.read).json()["model_version"]
        == live_model.version
    )


def test_a_variant_can_serve_another_version(
    client: TestClient, keys: Keys, live_model: LiveModel, new_version: str
) -> None:
    create_experiment(
        client,
        keys.admin,
        variants=[
            {"name": "new-model", "weight": 100, "config": {"model_version": new_version}},
            {"name": "live", "weight": 0, "config": {"model_version": "live"}},
        ],
    )
    body = client.get("/v1/users/1/recommendations", headers=keys.read).json()
    assert body["model_version"] == new_version
    assert body["variant"]["name"] == "new-model"


@pytest.fixture
def background_client(
    scratch_database_url: str,
    api_redis: redis.Redis,
    api_redis_url: str,
    tmp_path: Path,
    live_model: LiveModel,
    api_data_dir: Path,
) -> Iterator[tuple[FastAPI, TestClient]]:
    """An app with its background threads, on a database of its own (the threads use their own sessions)."""
    upgrade(scratch_database_url)
    settings = api_settings(scratch_database_url, api_redis_url, api_data_dir, API_BACKGROUND_TASKS=True)
    app = create_app(settings)
    with TestClient(app) as client:
        yield app, client


def test_the_announcement_swaps_the_model_within_a_second(
    background_client: tuple[FastAPI, TestClient],
    api_redis: redis.Redis,
    live_model: LiveModel,
    new_version: str,
) -> None:
    app, _ = background_client
    assert state_of(app).models.require_live().version == live_model.version
    time.sleep(0.2)  # let the watcher subscribe
    # when
    publish_live_model(api_redis, LiveModel(version=new_version, artifact_dir=""))
    # then
    deadline = time.monotonic() + 5
    while state_of(app).models.require_live().version != new_version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state_of(app).models.require_live().version == new_version


def test_a_model_let_go_is_freed_although_the_heap_was_frozen(api_artifact: TrainResult) -> None:
    # The API freezes the heap after each load (no GC pauses); a swapped-out model must still be
    # freed, by reference counting, or every nightly swap would leak a model.
    model = LoadedModel.load(Path(api_artifact.artifact_path), "v-frozen")
    model.similar(1, 5)  # fills the model's lazy caches, as serving does
    model.title_index()
    freeze_heap()
    try:
        gone = weakref.ref(model)
        del model
        assert gone() is None
    finally:
        gc.unfreeze()
