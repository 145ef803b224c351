"""Command-line functions of the API, written for Typer: `movierec apikey ...` and `movierec serve api`.

Each is a plain function with annotated parameters, so it can be registered as-is:

    apikey_app = typer.Typer(help="API keys.")
    apikey_app.command("create")(apikey_create)
    apikey_app.command("revoke")(apikey_revoke)
    apikey_app.command("list")(apikey_list)
    serve_app.command("api")(serve_api)
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import console, database, fail, services
from services.settings import get_settings

LIST_COLUMNS = ("id", "name", "prefix", "scopes", "created", "last used", "revoked")


def apikey_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. android-app.")],
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", "-s", help="read, write or admin (admin implies the others); repeat for several."
        ),
    ] = None,
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    from db.session import create_session_factory, transaction
    from services.api.auth.service import api_key as api_key_service
    from services.api.errors import MovierecError

    with database() as (_, engine):
        try:
            with transaction(create_session_factory(engine)) as session:
                created = api_key_service.create(session, name=name, scopes=scopes or ["read"])
        except MovierecError as exc:
            raise fail(exc.detail, code=2) from exc
    console.print(
        f"created key {created.key_id} ({created.prefix}...) with scopes {', '.join(created.scopes)}"
    )
    typer.echo(created.secret)


def apikey_revoke(
    key: Annotated[str, typer.Argument(help="The key's id, or its prefix (mr_ and 8 characters).")],
) -> None:
    """Revoke an API key; running API instances refuse it within a second."""
    from redis import Redis

    from db.session import create_session_factory, transaction
    from services.api.auth.service import announce_revocation
    from services.api.auth.service import api_key as api_key_service
    from services.api.errors import MovierecError

    with database() as (urls, engine):
        try:
            with transaction(create_session_factory(engine)) as session:
                revoked = api_key_service.revoke(session, api_key_service.get_by_id_or_prefix(session, key))
                key_id, prefix, digest = revoked.id, revoked.prefix, revoked.key_hash
        except MovierecError as exc:
            raise fail(exc.detail, code=2) from exc
        client = Redis.from_url(urls.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            announce_revocation(client, digest)
        finally:
            client.close()
    console.print(f"revoked key {key_id} ({prefix}...)")


def apikey_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Also list revoked keys.")] = False,
) -> None:
    """List API keys (never their secrets)."""
    from db.session import create_session_factory, transaction
    from services.api.auth.service import api_key as api_key_service

    with database() as (_, engine), transaction(create_session_factory(engine)) as session:
        keys = api_key_service.list_keys(session, include_revoked=include_revoked)
        rows = [
            (
                str(key.id),
                key.name,
                key.prefix,
                ",".join(key.scopes),
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
                f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
            )
            for key in keys
        ]
    if not rows:
        console.print("no API keys")
    elif sys.stdout.isatty():
        table = Table(*LIST_COLUMNS)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:  # piped: one tab-separated line per key
        for row in rows:
            typer.echo("\t".join(row))


def serve_api(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: API_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """The REST API in the foreground (uvicorn), with embedded PostgreSQL and Redis unless configured."""
    import uvicorn

    settings = get_settings()
    with services(settings) as urls:
        # Worker processes read the resolved URLs instead of starting servers of their own.
        os.environ.update(urls.as_env())
        get_settings.cache_clear()
        uvicorn.run(
            "services.api.main:create_app",
            factory=True,
            host=host or settings.API_HOST,
            port=port or settings.API_PORT,
            workers=workers,
            log_level=settings.LOG_LEVEL.lower(),
            proxy_headers=True,
        )
