"""A real stack for the load and soak benchmarks, on free loopback ports in a temporary folder.

Embedded PostgreSQL and Redis, the schema migrated, MovieLens 100K loaded, the worker's whole
retrain run in this process (train, evaluate, log to MLflow on a PostgreSQL store, precompute every
user's top-N, switch the live pointer), then `movierec serve api` (uvicorn, one worker) as a child
process, waited for until `/ready` says the model is loaded, and an API key with read and write.

    with bench_stack() as stack:
        httpx.get(f"{stack.api_url}/v1/users/1/recommendations", headers=stack.headers)

Leaving the block stops the API, Redis and PostgreSQL and removes the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "mr_bench_admin_key_0123456789abcdef0123456789"
RATE_LIMIT = 100_000_000


@dataclass
class Stack:
    """What a benchmark talks to."""

    root: Path
    database_url: str
    redis_url: str
    api_url: str
    api_key: str
    api_pid: int
    model_version: str
    users_precomputed: int
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Wait until `url/ready` answers 200 with a loaded model."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode}")
        try:
            response = httpx.get(f"{url}/ready", timeout=2)
            if response.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} was not ready after {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def uvicorn_env(**values: str) -> dict[str, str]:
    """The environment of a server child: this one, one BLAS thread, quiet logs, plus `values`."""
    env = dict(os.environ)
    env.update(
        {
            "LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(values)
    return env


def _train_and_publish(root: Path, database_url: str, mlflow_url: str, redis_url: str) -> tuple[str, int]:
    """Load MovieLens 100K and run the worker's retrain inline; returns (live version, users)."""
    import redis
    from sqlalchemy import make_url

    from db.ingest import load_dataset
    from db.migrate import upgrade
    from db.session import create_db_engine, create_session_factory
    from ml.datasets import load
    from services.settings import Settings
    from services.worker.retrain import Services, retrain_inline
    from services.worker.tracking import Tracker

    upgrade(database_url)
    engine = create_db_engine(database_url, "cli", pool_size=2)
    client = redis.Redis.from_url(redis_url)
    try:
        load_dataset(engine, load("ml-100k"))
        artifacts = str(root / "mlflow-artifacts")
        settings = Settings(
            _env_file=None,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            DATA_DIR=root / "data",
            MLFLOW_ARTIFACT_ROOT=artifacts,
        )
        tracker = Tracker(
            make_url(mlflow_url).set(drivername="postgresql+psycopg").render_as_string(False),
            experiment="movierec",
            model_name="movierec",
            artifact_root=artifacts,
        )
        services = Services(settings, engine, create_session_factory(engine), client, tracker)
        result = retrain_inline(services, owner="bench", trigger="bench")
        if result.status != "promoted" or result.model_version is None:
            raise RuntimeError(f"the bench model was not promoted: {result.status} {result.reason}")
        return result.model_version, result.users_precomputed
    finally:
        client.close()
        engine.dispose()


def _create_key(database_url: str) -> str:
    from db.session import create_db_engine, create_session_factory, transaction
    from services.api.auth.service import api_key as api_key_service

    engine = create_db_engine(database_url, "cli", pool_size=1)
    try:
        with transaction(create_session_factory(engine)) as session:
            return api_key_service.create(session, name="bench-app", scopes=["read", "write"]).secret
    finally:
        engine.dispose()


@contextmanager
def bench_stack(log: bool = True) -> Iterator[Stack]:
    """Start the whole stack; stop it and remove its folder on exit."""
    from services.embedded.postgres import EmbeddedPostgres
    from services.embedded.redis import EmbeddedRedis

    def say(message: str) -> None:
        if log:
            print(f"[stack] {message}", flush=True)

    with tempfile.TemporaryDirectory(prefix="movierec-load-") as tmp:
        root = Path(tmp)
        postgres = EmbeddedPostgres(root / "pg" / "data", free_port())
        redis_server = EmbeddedRedis(root / "redis", free_port())
        api: subprocess.Popen[bytes] | None = None
        log_file = None
        try:
            postgres.start()
            redis_server.start()
            postgres.ensure_database("movierec")
            postgres.ensure_database("mlflow")
            database_url = postgres.url("movierec")
            started = time.perf_counter()
            say("loading MovieLens 100K and retraining (about a minute)")
            version, users = _train_and_publish(root, database_url, postgres.url("mlflow"), redis_server.url)
            say(f"model {version} live, {users} users precomputed ({time.perf_counter() - started:.0f}s)")
            key = _create_key(database_url)
            port = free_port()
            api_url = f"http://127.0.0.1:{port}"
            log_path = root / "api.log"
            log_file = log_path.open("wb")
            env = uvicorn_env(
                DATABASE_URL=database_url,
                REDIS_URL=redis_server.url,
                DATA_DIR=str(root / "data"),
                API_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT),
                BOOTSTRAP_API_KEY=ADMIN_KEY,
                MLFLOW_TRACKING_URI=postgres.url("mlflow"),
            )
            command = [sys.executable, "-m", "services.cli.main", "serve", "api"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            api = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
            wait_ready(api_url, api)
            say(f"API ready at {api_url} (pid {api.pid})")
            yield Stack(
                root=root,
                database_url=database_url,
                redis_url=redis_server.url,
                api_url=api_url,
                api_key=key,
                api_pid=api.pid,
                model_version=version,
                users_precomputed=users,
                log_path=log_path,
            )
        finally:
            if api is not None:
                stop_process(api)
            if log_file is not None:
                log_file.close()
            redis_server.stop()
            postgres.stop()
            say("stopped")
