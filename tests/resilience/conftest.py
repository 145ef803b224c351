"""Fault injection against real servers: each test module gets its own PostgreSQL and Redis.

Every module here starts an embedded PostgreSQL and an embedded Redis of its own (free ports, data
under the module's tmp dir), so killing or restarting them never disturbs the session servers the
rest of the suite shares. The API runs as a real uvicorn process (`ApiProcess`), so it can be
stopped and started again on the same port. A serving artifact is trained once per run on a small
synthetic catalog (about 50 users, 280 movies, 5,000 ratings; a couple of seconds).

Scenarios (one module each):

- `test_redis_outage.py`: Redis is SIGKILLed under load; lists keep coming, `/ready` says degraded,
  and the cache refills once Redis is back.
- `test_postgres_restart.py`: PostgreSQL restarts while ratings are POSTed with `Idempotency-Key`;
  nothing acknowledged is lost, failures are clean 503s and their retries apply exactly once.
- `test_api_restart.py`: the API restarts under load; A/B assignments are unchanged and equal to
  those of a second instance.
- `test_hostile_input.py`: oversized, malformed, hostile and unauthorised requests, and a malformed
  CSV load through the CLI; each gets the right 4xx and nothing stored changes.

Related fault tests that live elsewhere and are not repeated here:

- `tests/worker/test_retrain_task.py::TestKilledWorker::test_leaves_the_served_model_alone_and_the_next_run_succeeds`:
  a Celery worker SIGKILLed mid-training leaves the served model alone, its lock expires and the
  next retrain succeeds.
- `tests/api/test_openapi_contract.py::test_every_operation_honours_its_schema`: schemathesis
  generates valid and invalid requests for every operation: no 5xx, every response matches the schema.
- `tests/api/test_redis_guard.py`: the circuit breaker in isolation.

Each scenario records what it measured (requests sent, errors seen, data lost, time to recover);
the numbers are printed at the end of the run, and written to the `## Resilience` section of
docs/benchmarks.md only when `MOVIEREC_WRITE_BENCH=1`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, text

from db.ingest import load_dataset
from db.migrate import upgrade
from db.session import create_db_engine
from ml.artifact import TrainConfig, TrainResult, train_all
from ml.datasets import Dataset, generate
from services.embedded import EmbeddedPostgres, EmbeddedRedis
from services.live_model import LiveModel, publish_live_model
from tests.bench.report import write_section
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "mr_resilience_test_admin_key_0123456789abcdef"
ADMIN = {"X-API-Key": ADMIN_KEY}
PROBLEM_JSON = "application/problem+json"
DATABASE = "movierec"
TABLES = ("app_user", "movie", "rating", "event", "experiment", "variant", "api_key", "idempotency_key")


@dataclass
class Measurement:
    """What one fault scenario measured."""

    scenario: str
    fault: str
    requests: int
    errors: int
    data_lost: int
    recovery_seconds: float | None
    """None when nothing had to recover (hostile input)."""
    notes: str = ""

    @property
    def recovery(self) -> str:
        return "–" if self.recovery_seconds is None else f"{self.recovery_seconds:.2f} s"

    def line(self) -> str:
        return (
            f"[resilience] {self.scenario}: {self.fault}: {self.requests} requests, {self.errors} errors, "
            f"{self.data_lost} lost, time to recover {self.recovery}. {self.notes}"
        )


MEASUREMENTS: list[Measurement] = []


def record(measurement: Measurement) -> None:
    """Keep a scenario's numbers for the summary (and the benchmark table when asked)."""
    MEASUREMENTS.append(measurement)
    print(measurement.line())


def merged(measurements: list[Measurement]) -> list[Measurement]:
    """One measurement per fault (parametrized tests record once per case), in scenario order."""
    out: dict[str, Measurement] = {}
    for m in measurements:
        if m.fault in out:
            row = out[m.fault]
            row.requests += m.requests
            row.errors += m.errors
            row.data_lost += m.data_lost
        else:
            out[m.fault] = Measurement(**vars(m))
    order = {name: i for i, name in enumerate(["redis", "postgres", "api", "hostile"])}
    return sorted(out.values(), key=lambda m: order.get(m.scenario, len(order)))


def _table(measurements: list[Measurement]) -> str:
    rows = [
        "| fault | requests sent | errors seen | data lost | time to recover | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in merged(measurements):
        rows.append(f"| {m.fault} | {m.requests:,} | {m.errors} | {m.data_lost} | {m.recovery} | {m.notes} |")
    return "\n".join(rows)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not MEASUREMENTS:
        return
    terminalreporter.section("resilience")
    for measurement in merged(MEASUREMENTS):
        terminalreporter.write_line(measurement.line())


@pytest.fixture(scope="session", autouse=True)
def _resilience_report() -> Iterator[None]:
    """Write the numbers to docs/benchmarks.md at the end of the run, only if MOVIEREC_WRITE_BENCH=1."""
    yield
    if os.environ.get("MOVIEREC_WRITE_BENCH") == "1" and MEASUREMENTS:
        body = (
            "Faults injected into real servers by `MOVIEREC_WRITE_BENCH=1 pytest tests/resilience` (own "
            "embedded PostgreSQL and Redis per scenario, the API as a uvicorn process, "
            "`API_REDIS_RETRY_AFTER=PT1S`; 2 cores shared with other test runs). "
            "Errors are responses that were not 2xx (connection errors included); data lost counts "
            "acknowledged writes missing afterwards; time to recover runs from the server being "
            "back (Redis, PostgreSQL) or from the restart signal (API) to the first normal answer.\n\n"
            + _table(MEASUREMENTS)
        )
        write_section("Resilience", body)


@dataclass(frozen=True)
class Trained:
    dataset: Dataset
    artifact: TrainResult
    data_dir: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A small catalog and its serving artifact, shared by every module's API."""
    dataset = generate(5_000, seed=1)
    data_dir = tmp_path_factory.mktemp("resilience-data")
    artifact = train_all(dataset, data_dir / "models", TrainConfig(evaluate=False))
    return Trained(dataset, artifact, data_dir)


@dataclass
class ApiProcess:
    """`uvicorn services.api.main:create_app` in a process group of its own."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until `/ready` says the model is loaded; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}:\n{self.tail()}")
            try:
                response = httpx.get(f"{self.url}/ready", timeout=2)
                if response.json().get("checks", {}).get("model") == "ok":
                    return time.monotonic() - started
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the API was not ready within {timeout:.0f}s:\n{self.tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL if it takes too long."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@dataclass
class Stack:
    """One module's own PostgreSQL, Redis, loaded database and API processes."""

    root: Path
    postgres: EmbeddedPostgres
    redis_server: EmbeddedRedis
    database_url: str
    redis_url: str
    engine: Engine
    trained: Trained
    apis: list[ApiProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        values = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "ENVIRONMENT": "test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "DATA_DIR": str(self.trained.data_dir),
            "BOOTSTRAP_API_KEY": ADMIN_KEY,
            "API_RATE_LIMIT_PER_MINUTE": "1000000",
            "API_REDIS_RETRY_AFTER": "PT1S",
            "LOG_LEVEL": "WARNING",
        }
        values.update(overrides)
        return values

    def start_api(self, port: int | None = None, *, wait: bool = True, **env: str) -> ApiProcess:
        """Start an API process (on `port`, or a free one) and, unless told not to, wait until it
        serves the model (`ApiProcess.wait_ready`)."""
        port = port or free_port()
        log = self.root / f"api-{port}-{len(self.apis)}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "services.api.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=self.root,  # no stray .env is read
            env=self.env(**env),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        api = ApiProcess(process, port, log)
        self.apis.append(api)
        if wait:
            api.wait_ready()
        return api

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)

    def counts(self) -> dict[str, int]:
        """Row counts of the tables requests could change."""
        with self.engine.connect() as connection:
            return {
                table: int(connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0) for table in TABLES
            }


@pytest.fixture(scope="module")
def stack(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """PostgreSQL and Redis of this module only, the catalog loaded, the artifact published as live."""
    root = tmp_path_factory.mktemp("resilience")
    postgres = EmbeddedPostgres(root / "postgres" / "data", free_port())
    redis_server = EmbeddedRedis(root / "redis", free_port())
    engine: Engine | None = None
    current: Stack | None = None
    try:
        postgres.start()  # failing to start is an error, never a skip
        redis_server.start()
        postgres.ensure_database(DATABASE)
        database_url = postgres.url(DATABASE)
        upgrade(database_url)
        engine = create_db_engine(database_url, "test")
        load_dataset(engine, trained.dataset)
        client = redis.Redis.from_url(redis_server.url)
        publish_live_model(
            client,
            LiveModel(
                version=trained.artifact.model_version, artifact_dir=str(trained.artifact.artifact_path)
            ),
        )
        client.close()
        current = Stack(root, postgres, redis_server, database_url, redis_server.url, engine, trained)
        yield current
    finally:
        if current is not None:
            for api in current.apis:
                api.stop()
        if engine is not None:
            engine.dispose()
        redis_server.stop()
        postgres.stop()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """`response` is a problem+json of `status` that leaks no stack trace or SQL."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    lowered = response.text.lower()
    for leak in ("traceback", 'file "', "sqlalchemy", "psycopg", "select ", "insert into", "sqlstate"):
        assert leak not in lowered, f"{leak!r} in {response.text[:500]}"
    return body
