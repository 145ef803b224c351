"""Fixtures of the API tests: a synthetic catalog in a database of their own, a serving artifact
trained once per run, and an app whose requests share the test's transaction (rolled back after it).

The app runs without its background threads; tests call what they would do (`exposures.flush()`,
`sync_live_model`) themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.ingest import load_dataset
from db.migrate import upgrade
from db.session import create_db_engine
from ml.artifact import TrainConfig, TrainResult, train_all
from ml.datasets import Dataset, generate
from services.api.auth.service import api_key as api_key_service
from services.api.main import create_app
from services.api.state import AppState
from services.live_model import LiveModel, publish_live_model
from services.settings import Settings
from tests.conftest import RunningServers, create_database, drop_database

# A Redis database of their own, so the API tests never touch what other suites keep in db 0.
API_REDIS_DB = 3


@pytest.fixture(scope="session")
def api_dataset() -> Dataset:
    """A MovieLens-shaped catalog: about 650 movies, 200 users, 20,000 ratings."""
    return generate(20_000, seed=1)


@pytest.fixture(scope="session")
def api_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-data")


@pytest.fixture(scope="session")
def api_artifact(api_dataset: Dataset, api_data_dir: Path) -> TrainResult:
    """The serving artifact of `api_dataset`, where the API looks for it (`DATA_DIR/models/<version>`)."""
    return train_all(api_dataset, api_data_dir / "models", TrainConfig(evaluate=False))


@pytest.fixture(scope="session")
def api_database_url(servers: RunningServers, api_dataset: Dataset) -> Iterator[str]:
    """A migrated database holding `api_dataset` (committed once; tests roll their own work back)."""
    url = create_database(servers, prefix="movierec_api")
    upgrade(url)
    engine = create_db_engine(url, "test")
    try:
        load_dataset(engine, api_dataset)
    finally:
        engine.dispose()
    yield url
    drop_database(servers, url)


@pytest.fixture(scope="session")
def api_engine(api_database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(api_database_url, "test")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def api_redis_url(servers: RunningServers) -> str:
    return urlsplit(servers.redis_url)._replace(path=f"/{API_REDIS_DB}").geturl()


@pytest.fixture
def api_redis(api_redis_url: str) -> Iterator[redis.Redis]:
    """A client on the API tests' Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(api_redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def live_model(api_redis: redis.Redis, api_artifact: TrainResult) -> LiveModel:
    """The test artifact published as the live model, as the worker would."""
    pointer = LiveModel(version=api_artifact.model_version, artifact_dir=str(api_artifact.artifact_path))
    publish_live_model(api_redis, pointer)
    return pointer


@pytest.fixture
def db_session(api_engine: Engine) -> Iterator[Session]:
    """The test's transaction: the app's sessions are savepoints inside it; all of it is rolled back."""
    with api_engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        yield session
        session.close()
        outer.rollback()


def api_settings(database_url: str, redis_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings of an app under test (no `.env`, no background threads)."""
    values: dict[str, object] = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATA_DIR": data_dir,
        "API_BACKGROUND_TASKS": False,
        "BOOTSTRAP_API_KEY": None,
        "API_CORS_ORIGINS": ["https://app.example.com"],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings(api_database_url: str, api_redis_url: str, api_data_dir: Path) -> Settings:
    return api_settings(api_database_url, api_redis_url, api_data_dir)


@pytest.fixture
def app(settings: Settings, db_session: Session, live_model: LiveModel) -> FastAPI:
    """The app, its sessions bound to the test's transaction."""
    connection = db_session.connection()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return create_app(settings, session_factory=factory)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def state_of(app: FastAPI) -> AppState:
    state: AppState = app.state.api
    return state


@dataclass(frozen=True)
class Keys:
    """API keys of each scope, as `X-API-Key` headers."""

    read: dict[str, str]
    write: dict[str, str]
    admin: dict[str, str]
    read_write: dict[str, str]


@pytest.fixture
def keys(db_session: Session) -> Keys:
    def make(name: str, *scopes: str) -> dict[str, str]:
        created = api_key_service.create(db_session, name=name, scopes=scopes)
        return {"X-API-Key": created.secret}

    headers = Keys(
        read=make("reader", "read"),
        write=make("writer", "write"),
        admin=make("admin", "admin"),
        read_write=make("app", "read", "write"),
    )
    db_session.commit()  # releases the savepoint; the outer transaction is still rolled back
    return headers
