"""What every CLI command shares: settings, logging, service URLs, clear errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.logging import RichHandler

from services.settings import Settings, get_settings

if TYPE_CHECKING:  # imported where used: every command imports this module, `--help` too
    from sqlalchemy import Engine

    from services.embedded import ServiceUrls

console = Console(stderr=True)


def configure_logging(level: str) -> None:
    """Human-friendly logs on stderr."""
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("alembic.runtime.migration", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error and return the exit to raise."""
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def services(settings: Settings | None = None) -> Iterator[ServiceUrls]:
    """Resolved service URLs; embedded servers run for the duration of the block when needed."""
    from services.embedded import EmbeddedServerError, running_services

    settings = settings or get_settings()
    try:
        with running_services(settings) as urls:
            yield urls
    except EmbeddedServerError as exc:
        raise fail(str(exc)) from exc


@contextmanager
def database(known: ServiceUrls | None = None) -> Iterator[tuple[ServiceUrls, Engine]]:
    """An engine on the movierec database, with clear errors when it is unreachable.

    Args:
        known: URLs already resolved by the caller (whose servers are running); None resolves them.
    """
    from sqlalchemy.exc import OperationalError

    from db.session import create_db_engine

    with contextlib.ExitStack() as stack:
        urls = known or stack.enter_context(services())
        engine = create_db_engine(urls.database_url, "cli")
        try:
            yield urls, engine
        except OperationalError as exc:
            raise fail(f"cannot reach the database: {exc.orig}") from exc
        finally:
            engine.dispose()
