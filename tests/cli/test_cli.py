"""The `movierec` command line, run as a real process against the test servers."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, pool, select

from db.migrate import head_revision
from db.models import Rating
from ml.datasets import generate, write_grouplens
from tests.conftest import RunningServers

COMMANDS = [
    [],
    ["db"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["db", "current"],
    ["data"],
    ["data", "load"],
    ["data", "synth"],
    ["serve"],
    ["serve", "mlflow"],
    ["serve", "api"],
    ["serve", "worker"],
    ["serve", "beat"],
    ["serve", "dashboard"],
    ["apikey"],
    ["apikey", "create"],
    ["apikey", "revoke"],
    ["apikey", "list"],
    ["up"],
    ["train"],
    ["evaluate"],
    ["simulate"],
    ["seed-demo"],
]


def movierec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=300,
        check=False,
    )


@pytest.fixture
def cli_env(servers: RunningServers, scratch_database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"DATABASE_URL": scratch_database_url, "REDIS_URL": servers.redis_url, "DATA_DIR": str(tmp_path)}


def _ratings(url: str) -> int:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(Rating)) or 0
    engine.dispose()
    return count


class TestHelp:
    @pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "movierec")
    def test_every_command_has_help(self, command: list[str]) -> None:
        result = movierec(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout


class TestDbCommands:
    def test_upgrade_then_current_reports_head(self, cli_env: dict[str, str]) -> None:
        assert movierec("db", "upgrade", env=cli_env).returncode == 0
        result = movierec("db", "current", env=cli_env)
        assert result.returncode == 0
        assert f"current: {head_revision()}" in result.stdout
        assert "up to date" in result.stdout


class TestDataLoad:
    def test_loads_a_grouplens_folder(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        folder = tmp_path / "ml-latest-small"
        write_grouplens(generate(2_000, seed=1), folder, "ml-latest")
        # when
        result = movierec("data", "load", str(folder), env=cli_env)
        # then
        assert result.returncode == 0, result.stderr
        assert _ratings(cli_env["DATABASE_URL"]) == 2_000

    def test_a_malformed_file_is_rejected_with_file_and_line_and_nothing_changes(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        good = tmp_path / "good"
        write_grouplens(generate(1_000, seed=2), good, "ml-latest")
        assert movierec("data", "load", str(good), env=cli_env).returncode == 0
        bad = tmp_path / "bad"
        write_grouplens(generate(1_500, seed=3), bad, "ml-latest")
        lines = (bad / "ratings.csv").read_text().splitlines()
        lines[7] = "1,2,not-a-number,964982703"
        (bad / "ratings.csv").write_text("\n".join(lines) + "\n")
        # when
        result = movierec("data", "load", str(bad), env=cli_env)
        # then
        assert result.returncode == 2
        assert "ratings.csv:8" in result.stderr
        assert "nothing was loaded" in result.stderr
        assert _ratings(cli_env["DATABASE_URL"]) == 1_000

    def test_a_missing_path_is_a_clear_error(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        result = movierec("data", "load", str(tmp_path / "nope"), env=cli_env)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr

    def test_synth_loads_the_requested_number_of_ratings(self, cli_env: dict[str, str]) -> None:
        result = movierec("data", "synth", "--ratings", "3000", "--seed", "7", env=cli_env)
        assert result.returncode == 0, result.stderr
        assert _ratings(cli_env["DATABASE_URL"]) == 3_000

    def test_an_unreachable_database_is_a_clear_error(self, cli_env: dict[str, str]) -> None:
        env = {**cli_env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/movierec"}
        result = movierec("data", "synth", "--ratings", "100", env=env)
        assert result.returncode == 1
        assert "cannot reach the database" in result.stderr
        assert "Traceback" not in result.stderr


def test_building_the_cli_imports_no_heavy_library() -> None:
    # Every command's module is imported for `movierec --help`; the libraries a command needs are
    # imported when it runs, so help and typos answer at once.
    heavy = ("pandas", "sqlalchemy", "fastapi", "redis", "psycopg", "mlflow", "surprise", "alembic", "httpx")
    code = f"import sys, services.cli.main; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
