"""`movierec db`: schema migrations."""

from __future__ import annotations

import typer

from services.cli.common import console, services

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    from db import migrate

    with services() as urls:
        migrate.upgrade(urls.database_url, revision)
        console.print(f"database at revision [bold]{migrate.current_revision(urls.database_url)}[/]")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision; `base` drops every table.")) -> None:
    """Migrate the schema down to REVISION."""
    from db import migrate

    with services() as urls:
        migrate.downgrade(urls.database_url, revision)
        console.print(f"database at revision [bold]{migrate.current_revision(urls.database_url)}[/]")


@app.command()
def current() -> None:
    """Show the revision the database is at, and the newest one available."""
    from db import migrate

    with services() as urls:
        now = migrate.current_revision(urls.database_url)
        head = migrate.head_revision()
        state = "up to date" if now == head else "needs `movierec db upgrade`"
        typer.echo(f"current: {now or '(empty)'}  head: {head}  {state}")
