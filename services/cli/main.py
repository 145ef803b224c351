"""The `movierec` command line."""

from __future__ import annotations

import typer

from services.cli import data_commands, db_commands, serve_commands
from services.cli.common import configure_logging
from services.cli.up_command import up
from services.settings import get_settings

app = typer.Typer(
    name="movierec",
    help="Self-hosted movie recommendations: data, training, serving.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db_commands.app, name="db")
app.add_typer(data_commands.app, name="data")
app.add_typer(serve_commands.app, name="serve")
app.command()(up)


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
