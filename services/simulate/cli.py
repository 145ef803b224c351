"""Command-line functions of the traffic replay (plain functions; typer reads their annotations)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def simulate(
    users: Annotated[
        int, typer.Option("--users", min=1, help="MovieLens users to replay, each as a new account.")
    ] = 300,
    days: Annotated[
        int, typer.Option("--days", min=1, max=365, help="Length of the simulated period, ending now.")
    ] = 14,
    experiment: Annotated[
        str | None,
        typer.Option(
            "--experiment", help="Experiment the traffic is for (started if a draft). Default: whatever runs."
        ),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Default: API_URL or http://127.0.0.1:API_PORT.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="MOVIEREC_API_KEY", help="Default: the admin key in DATA_DIR/admin-api-key."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed: same users, schedule and clicks.")] = 0,
) -> None:
    """Replay MovieLens users through the API: they click only what they rated >= 4 stars in held-out data."""
    from services.simulate.client import ApiFailure, ApiUnreachable
    from services.simulate.run import ReplayError, report_table, run_replay

    try:
        report = run_replay(
            users=users,
            days=days,
            experiment=experiment,
            api_url=api_url,
            api_key=api_key,
            seed=seed,
            console=console,
        )
    except (ReplayError, ApiFailure, ApiUnreachable) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    console.print(report_table(report))


def seed_demo(
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Default: API_URL or http://127.0.0.1:API_PORT.")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="MOVIEREC_API_KEY")] = None,
    users: Annotated[int, typer.Option("--users", min=1)] = 200,
    days: Annotated[int, typer.Option("--days", min=1, max=365)] = 14,
) -> None:
    """Create the demo experiment (SVD vs hybrid, 50/50), start it and replay traffic (once)."""
    from services.simulate.client import ApiFailure, ApiUnreachable
    from services.simulate.run import ReplayError, report_table
    from services.simulate.run import seed_demo as run_seed_demo

    try:
        report = run_seed_demo(api_url=api_url, api_key=api_key, users=users, days=days, console=console)
    except (ReplayError, ApiFailure, ApiUnreachable) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    if report is None:
        console.print("demo experiment already seeded (or another experiment runs): nothing to do")
    else:
        console.print(report_table(report))
