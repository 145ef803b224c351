"""A real Celery worker process against the test PostgreSQL and Redis, with MLflow on PostgreSQL.

Worker tests share one module-scoped stack: a migrated database loaded with 20,000 synthetic
ratings, an MLflow backend database (MLflow's tracking store used directly, no server), a Redis
database of their own for the broker, results and served keys, and a DATA_DIR for artifacts.
Workers are started as `celery -A services.worker.celery_app worker` subprocesses with that
environment; the tests talk to them through the broker only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, make_url, text

from db.ingest import load_dataset
from db.migrate import upgrade
from db.session import create_db_engine
from ml.datasets import generate
from services.live_model import PREFIX
from tests.conftest import RunningServers, create_database, drop_database

WORKER_REDIS_DB = 3
LOCK_TTL_SECONDS = 8
CHUNK_USERS = 80  # the 20K dataset has about 200 users: the precompute runs as a chord of 3 chunks


@dataclass
class WorkerStack:
    """Everything a worker process is pointed at, and clients on it for the tests."""

    env: dict[str, str]
    database_url: str
    mlflow_uri: str
    redis_url: str
    data_dir: Path
    engine: Engine
    redis: redis.Redis
    celery: Celery
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, concurrency: int = 2, **env: str) -> WorkerProcess:
        """Start a worker (with `env` on top of the stack's) and wait until it answers a ping."""
        worker = WorkerProcess.start(self, concurrency, env)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        """Stop every worker started so far."""
        for worker in self.workers:
            worker.stop()

    def served_snapshot(self) -> dict[bytes, object]:
        """The live pointer and every recommendation hash, to compare before and after."""
        snapshot: dict[bytes, object] = {b"live": self.redis.get(f"{PREFIX}:model:live")}
        for key in self.redis.scan_iter(match=f"{PREFIX}:recs:*", count=1000):
            snapshot[key] = self.redis.hgetall(key)
        return snapshot


@dataclass
class WorkerProcess:
    """One `celery worker` subprocess (its own process group, so it can be killed whole)."""

    process: subprocess.Popen[bytes]
    name: str
    log: Path

    @classmethod
    def start(cls, stack: WorkerStack, concurrency: int, env: dict[str, str]) -> WorkerProcess:
        name = f"test-{uuid.uuid4().hex[:6]}@localhost"
        log = stack.log_dir / f"{name.split('@')[0]}.log"
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "services.worker.celery_app",
                "worker",
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                f"--hostname={name}",
                "--without-gossip",
                "--without-mingle",
            ],
            env={**os.environ, **stack.env, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = cls(process, name, log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited with {process.returncode}:\n{worker.tail()}")
            replies = stack.celery.control.ping(destination=[name], timeout=0.5)
            if replies:
                return worker
        worker.kill()
        raise RuntimeError(f"worker did not answer within 60s:\n{worker.tail()}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as an OOM killer would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown, then SIGKILL if it takes too long."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def _with_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture(scope="module")
def stack(servers: RunningServers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerStack]:
    """A loaded database, an MLflow database and a Redis database for worker tests (module-wide)."""
    root = tmp_path_factory.mktemp("worker")
    database_url = create_database(servers, prefix="movierec_worker")
    mlflow_url = create_database(servers, prefix="mlflow_worker")
    upgrade(database_url)
    engine = create_db_engine(database_url, "test", pool_size=2)
    load_dataset(engine, generate(20_000, seed=1))
    redis_url = _with_db(servers.redis_url, WORKER_REDIS_DB)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    mlflow_uri = (
        make_url(mlflow_url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )
    _create_mlflow_tables(mlflow_uri)
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MLFLOW_ARTIFACT_ROOT": str(root / "mlflow-artifacts"),
        "DATA_DIR": str(root / "data"),
        "RETRAIN_LOCK_TTL": f"PT{LOCK_TTL_SECONDS}S",
        "PRECOMPUTE_CHUNK_USERS": str(CHUNK_USERS),
        "LOG_LEVEL": "INFO",
    }
    celery = Celery("movierec-tests", broker=redis_url, backend=redis_url)
    celery.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    log_dir = root / "logs"
    log_dir.mkdir()
    result = WorkerStack(
        env, database_url, mlflow_uri, redis_url, root / "data", engine, client, celery, log_dir
    )
    try:
        yield result
    finally:
        result.stop_workers()
        celery.close()
        client.flushdb()
        client.close()
        engine.dispose()
        drop_database(servers, database_url)
        drop_database(servers, mlflow_url)


def _create_mlflow_tables(uri: str) -> None:
    """Build MLflow's schema once, so worker processes do not race to create it."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments()


def model_versions(engine: Engine) -> list[tuple[int, str, str | None]]:
    """(version, status, reason) of every `model_version` row, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT version, status, reason FROM model_version ORDER BY version"))
        return [(int(v), str(s), r) for v, s, r in rows]
