"""deploy/docker/bootstrap.sh against the test PostgreSQL: the phase that needs no new CLI command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from tests.conftest import RunningServers, _libpq
from tests.deploy.conftest import BOOTSTRAP


def _bootstrap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["sh", str(BOOTSTRAP), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, **env},
        timeout=120,
        check=False,
    )


def _database_exists(servers: RunningServers, name: str) -> bool:
    with psycopg.connect(_libpq(servers.postgres_url), autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def test_databases_phase_creates_mlflows_database_once(
    servers: RunningServers, scratch_database_url: str, tmp_path: Path
) -> None:
    name = f"mlflow_test_{uuid.uuid4().hex[:8]}"
    env = {
        "ENVIRONMENT": "production",
        "DATABASE_URL": scratch_database_url,
        "REDIS_URL": servers.redis_url,
        "MLFLOW_BACKEND_STORE_URI": make_url(scratch_database_url)
        .set(database=name)
        .render_as_string(hide_password=False),
        "DATA_DIR": str(tmp_path),
    }
    try:
        first = _bootstrap("databases", env=env)
        assert first.returncode == 0, first.stderr
        assert _database_exists(servers, name)
        again = _bootstrap("databases", env=env)
        assert again.returncode == 0, again.stderr
    finally:
        with psycopg.connect(_libpq(servers.postgres_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_unknown_phase_is_refused() -> None:
    result = _bootstrap("nonsense", env={})
    assert result.returncode == 2
    assert "unknown phase" in result.stderr
