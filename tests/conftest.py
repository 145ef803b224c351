"""Shared fixtures: real PostgreSQL and Redis (embedded unless TEST_DATABASE_URL / TEST_REDIS_URL are set).

A test run gets its own database, built by our Alembic migrations; each test runs in a transaction
that is rolled back. Tests that need other processes to see their rows (a Celery worker, the CLI)
commit and clean up after themselves.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
import redis
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session

from db.migrate import upgrade
from db.session import create_db_engine
from services.embedded import EmbeddedPostgres, EmbeddedRedis

RNG_SEED = 42


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(RNG_SEED)
    np.random.seed(RNG_SEED)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServers:
    """The PostgreSQL server and Redis the test run talks to."""

    postgres_url: str  # server URL with the maintenance database
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServers]:
    """Real servers for the whole run; failing to start them is an error, never a skip."""
    root = tmp_path_factory.mktemp("servers")
    postgres = redis_server = None
    postgres_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    try:
        if postgres_url is None:
            postgres = EmbeddedPostgres(root / "postgres" / "data", free_port())
            postgres.start()
            postgres_url = postgres.admin_url
        if redis_url is None:
            redis_server = EmbeddedRedis(root / "redis", free_port())
            redis_server.start()
            redis_url = redis_server.url
        yield RunningServers(postgres_url, redis_url, postgres, redis_server)
    finally:
        if redis_server is not None:
            redis_server.stop()
        if postgres is not None:
            postgres.stop()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(servers: RunningServers, prefix: str = "movierec_test") -> str:
    """A new empty database on the test server; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(servers.postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(servers.postgres_url).set(database=name).render_as_string(hide_password=False)


def drop_database(servers: RunningServers, url: str) -> None:
    """Drop a database made by `create_database`, closing its connections."""
    name = make_url(url).database
    with psycopg.connect(_libpq(servers.postgres_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(servers: RunningServers) -> Iterator[str]:
    """A database for this run, migrated to head by Alembic."""
    url = create_database(servers)
    upgrade(url)
    yield url
    drop_database(servers, url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url, "test")
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        yield session
        session.close()
        outer.rollback()


@pytest.fixture
def scratch_database_url(servers: RunningServers) -> Iterator[str]:
    """An empty, unmigrated database of the test's own, for tests that commit or migrate."""
    url = create_database(servers, prefix="movierec_scratch")
    yield url
    drop_database(servers, url)


@pytest.fixture
def redis_client(servers: RunningServers) -> Iterator[redis.Redis]:
    """A client on an emptied Redis database."""
    client = redis.Redis.from_url(servers.redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")
