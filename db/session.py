"""Engines and sessions: one engine per process, one transaction per request or task."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

ProcessName = Literal["api", "worker", "beat", "dashboard", "cli", "test"]


def create_db_engine(dsn: str, process: ProcessName, *, pool_size: int = 5) -> Engine:
    """Engine for one process; the name shows up in `pg_stat_activity.application_name`."""
    return create_engine(
        dsn,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"application_name": f"movierec.{process}", "connect_timeout": 5},
    )


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit if the block returns, roll back if it raises."""
    with factory.begin() as session:
        yield session
