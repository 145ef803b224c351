"""The command-line functions: typer reads them as they are, errors become a message and exit code 1."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from services.simulate import cli
from tests.conftest import free_port


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(cli.simulate)
    app.command("seed-demo")(cli.seed_demo)
    return app


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(_app(), ["simulate", "--help"])
    assert result.exit_code == 0
    for option in ("--users", "--days", "--experiment", "--api-url", "--api-key", "--seed"):
        assert option in result.output


def test_unreachable_api_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        _app(), ["simulate", "--users", "2", "--days", "1", "--api-url", url, "--api-key", "mr_x"]
    )
    assert result.exit_code == 1
    assert "did not answer" in result.output
