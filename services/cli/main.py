"""The `movierec` command line."""

from __future__ import annotations

import typer

from services.api import cli as api_cli
from services.cli import data_commands, db_commands, serve_commands
from services.cli.common import configure_logging
from services.cli.evaluate_command import evaluate
from services.cli.up_command import up
from services.dashboard import cli as dashboard_cli
from services.settings import get_settings
from services.simulate import cli as simulate_cli
from services.worker import cli as worker_cli

app = typer.Typer(
    name="movierec",
    help="Self-hosted movie recommendations: data, training, serving.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_commands.app, name="db")
app.add_typer(data_commands.app, name="data")

serve_commands.app.command("api")(api_cli.serve_api)
serve_commands.app.command("worker")(worker_cli.serve_worker)
serve_commands.app.command("beat")(worker_cli.serve_beat)
serve_commands.app.command("dashboard")(dashboard_cli.serve_dashboard)
app.add_typer(serve_commands.app, name="serve")

apikey = typer.Typer(help="API keys: create, revoke, list.", no_args_is_help=True)
apikey.command("create")(api_cli.apikey_create)
apikey.command("revoke")(api_cli.apikey_revoke)
apikey.command("list")(api_cli.apikey_list)
app.add_typer(apikey, name="apikey")

app.command()(up)
app.command()(worker_cli.train)
app.command()(evaluate)
app.command()(simulate_cli.simulate)
app.command("seed-demo")(simulate_cli.seed_demo)


@app.callback()
def main(
    log_level: str = typer.Option(
        None, "--log-level", help="DEBUG, INFO, WARNING or ERROR (default: LOG_LEVEL)."
    ),
) -> None:
    """Configure logging for every command."""
    configure_logging((log_level or get_settings().LOG_LEVEL).upper())


if __name__ == "__main__":
    app()
