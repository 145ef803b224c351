"""The demo seeding against the real API (uvicorn in a thread), then read back by the dashboard's queries.

One slow test: it trains a small serving artifact (about 15 seconds), starts the API on a database
of its own, seeds the demo experiment through HTTP, and checks that what the replay sent is what
the dashboard reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import Engine, func, select

from db.ingest import load_dataset
from db.migrate import upgrade
from db.models import Assignment, Event
from db.session import create_db_engine
from ml.artifact import TrainConfig, train_all
from ml.datasets import load
from services.api.main import create_app
from services.dashboard import queries
from services.dashboard.analysis import analyse
from services.live_model import LiveModel, publish_live_model
from services.settings import Settings
from services.simulate.run import DEMO_EXPERIMENT, seed_demo
from tests.conftest import RunningServers, create_database, drop_database, free_port

DATASET = "synth:20000:1"
ADMIN_KEY = "mr_replay_test_admin_key_0123456789abcdef"
REDIS_DB = 6  # a database of its own on the test Redis

pytestmark = pytest.mark.slow


@dataclass
class LiveApi:
    url: str
    engine: Engine


@pytest.fixture(scope="module")
def live_api(servers: RunningServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """The API serving a model trained on `DATASET`, over HTTP on a free port."""
    dataset = load(DATASET)
    data_dir = tmp_path_factory.mktemp("replay-api")
    database_url = create_database(servers, prefix="movierec_replay")
    upgrade(database_url)
    engine = create_db_engine(database_url, "test")
    load_dataset(engine, dataset)
    artifact = train_all(dataset, data_dir / "models", TrainConfig(evaluate=False))
    redis_url = f"{servers.redis_url.rstrip('/').rsplit('/', 1)[0]}/{REDIS_DB}"
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    publish_live_model(
        client, LiveModel(version=artifact.model_version, artifact_dir=str(artifact.artifact_path))
    )
    settings = Settings(
        _env_file=None,
        ENVIRONMENT="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DATA_DIR=data_dir,
        BOOTSTRAP_API_KEY=ADMIN_KEY,
        API_RATE_LIMIT_PER_MINUTE=100_000,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).json()["checks"]["model"] == "ok":
                break
        except (httpx.TransportError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the API did not become ready")
    try:
        yield LiveApi(url, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        client.flushdb()
        client.close()
        engine.dispose()
        drop_database(servers, database_url)


def test_seed_demo_fills_what_the_dashboard_reads(live_api: LiveApi) -> None:
    # when
    report = seed_demo(api_url=live_api.url, api_key=ADMIN_KEY, users=30, days=5, dataset=DATASET, wait=60)
    # then: the API put every list in the demo experiment, in both arms
    assert report is not None
    assert report.experiments == {DEMO_EXPERIMENT}
    assert set(report.arms) == {"svd", "hybrid"}
    assert sum(len(arm.users) for arm in report.arms.values()) == 30
    # exposures reach the database through the API's flusher (every second)
    with live_api.engine.connect() as connection:
        deadline = time.monotonic() + 20
        while (connection.scalar(select(func.count()).select_from(Assignment)) or 0) < 30 and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)
            connection.rollback()
        experiment = queries.get_experiment(connection, DEMO_EXPERIMENT)
        assert experiment is not None and experiment.status == "running"
        variants = {v.name: v for v in queries.variant_metrics(connection, experiment.id)}
        untagged = connection.scalar(
            select(func.count()).select_from(Event).where(Event.experiment_id.is_(None))
        )
    # and the dashboard counts exactly what the replay sent
    assert untagged == 0
    for name, arm in report.arms.items():
        assert variants[name].assigned_users == len(arm.users)
        assert variants[name].impressions == arm.impressions
        assert variants[name].clicks == arm.clicks
        assert variants[name].rating_events == arm.clicks
    assert analyse(list(variants.values())).srm.p_value > 0.001
    # a second seeding does nothing
    assert seed_demo(api_url=live_api.url, api_key=ADMIN_KEY, dataset=DATASET, wait=10) is None
