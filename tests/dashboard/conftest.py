"""Databases for the dashboard tests: one seeded and committed (the app reads through its own
engine, so rows must be visible to other connections), one migrated but empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine

from db.migrate import upgrade
from db.session import create_db_engine
from tests.conftest import RunningServers, create_database, drop_database
from tests.dashboard.seed import seed_database


@pytest.fixture(scope="session")
def seeded_url(servers: RunningServers) -> Iterator[str]:
    """A migrated database holding `tests.dashboard.seed`, committed."""
    url = create_database(servers, prefix="movierec_dashboard")
    upgrade(url)
    seed_database(url)
    yield url
    drop_database(servers, url)


@pytest.fixture(scope="session")
def empty_url(servers: RunningServers) -> Iterator[str]:
    """A migrated database with no rows at all."""
    url = create_database(servers, prefix="movierec_dashboard_empty")
    upgrade(url)
    yield url
    drop_database(servers, url)


@pytest.fixture(scope="session")
def seeded_engine(seeded_url: str) -> Iterator[Engine]:
    engine = create_db_engine(seeded_url, "test")
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(seeded_engine: Engine) -> Iterator[Connection]:
    """A read connection on the seeded database."""
    with seeded_engine.connect() as connection:
        yield connection
