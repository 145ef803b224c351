"""Entry points of the traffic replay: `simulate` (any experiment) and `seed_demo` (the demo one)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.settings import Settings, get_settings
from services.simulate.client import ApiFailure, ReplayClient
from services.simulate.plan import build_plan
from services.simulate.replay import ReplayReport, replay

logger = logging.getLogger(__name__)

DEMO_EXPERIMENT = "svd-vs-hybrid"
DEMO_EXPERIMENT_BODY: dict[str, Any] = {
    "name": DEMO_EXPERIMENT,
    "description": "Demo: plain SVD (control) against the hybrid recommender, 50/50, filled by a traffic "
    "replay of MovieLens users whose held-out ratings decide what they click.",
    "variants": [
        {"name": "svd", "weight": 50, "is_control": True, "config": {"strategy": "svd"}},
        {"name": "hybrid", "weight": 50, "config": {"strategy": "hybrid"}},
    ],
}


POLL_SECONDS = 3.0
"""How often `/ready` is asked while waiting for a model."""
RETRAIN_AFTER_SECONDS = 60.0
"""Without a model for this long, the demo seeding queues a retrain."""


class ReplayError(RuntimeError):
    """The replay cannot run as asked (no API key, unknown or stopped experiment...)."""


def default_api_key(settings: Settings) -> str | None:
    """`MOVIEREC_API_KEY`, else the admin key the API wrote to `DATA_DIR/admin-api-key`."""
    key = os.environ.get("MOVIEREC_API_KEY")
    if key:
        return key.strip()
    try:
        return (Path(settings.DATA_DIR) / "admin-api-key").read_text().strip() or None
    except OSError:
        return None


def load_ratings(dataset: str) -> pd.DataFrame:
    """The ratings of a dataset (`ml-100k`, a GroupLens path...): the truth the replay plays back."""
    from ml.datasets import load

    return load(dataset).ratings


@contextmanager
def _progress(console: Console | None) -> Iterator[Any]:
    """A rich progress display, one bar per stage; yields the callback `replay` wants."""
    if console is None:
        yield None
        return
    bars: dict[str, TaskID] = {}
    with Progress(
        TextColumn("[bold]{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done, total=total)

        yield update


async def _find_experiment(client: ReplayClient, name: str) -> dict[str, Any] | None:
    return next((e for e in await client.list_experiments() if e["name"] == name), None)


async def _ensure_running(client: ReplayClient, name: str) -> dict[str, Any]:
    """The named experiment, started if it was a draft."""
    experiment = await _find_experiment(client, name)
    if experiment is None:
        raise ReplayError(
            f"no experiment named {name!r}: create it with POST /v1/experiments (or run the demo seeding)"
        )
    if experiment["status"] == "stopped":
        raise ReplayError(f"experiment {name!r} is stopped; its results are final")
    if experiment["status"] == "draft":
        try:
            experiment = await client.start_experiment(experiment["id"])
        except ApiFailure as exc:
            raise ReplayError(f"cannot start experiment {name!r}: {exc.detail}") from exc
    return experiment


async def _run(
    *,
    users: int,
    days: int,
    experiment: str | None,
    api_url: str,
    api_key: str,
    seed: int,
    k: int,
    dataset: str,
    concurrency: int,
    console: Console | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReplayReport:
    ratings = load_ratings(dataset)
    plan = build_plan(ratings, users=users, days=days, seed=seed, end=datetime.now(UTC))
    async with ReplayClient(api_url, api_key, concurrency=concurrency, transport=transport) as client:
        if experiment is not None:
            await _ensure_running(client, experiment)
        with _progress(console) as progress:
            report = await replay(plan, client, k=k, seed=seed, progress=progress)
    if experiment is not None and report.experiments != {experiment}:
        served = ", ".join(sorted(report.experiments)) or "none"
        logger.warning("asked for experiment %s but the API served: %s", experiment, served)
    return report


def run_replay(
    *,
    users: int = 300,
    days: int = 14,
    experiment: str | None = None,
    api_url: str | None = None,
    api_key: str | None = None,
    seed: int = 0,
    k: int = 10,
    dataset: str = "ml-100k",
    concurrency: int = 8,
    console: Console | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReplayReport:
    """Replay `users` MovieLens users over `days` through the API (see `services.simulate.plan`).

    Args:
        users: MovieLens users to replay, each as a new account.
        days: the simulated period, ending now.
        experiment: the experiment the traffic is for: started if it is a draft, refused if stopped;
            None: whatever experiment runs (or none).
        api_url: the API; default `API_URL` or `http://127.0.0.1:API_PORT`.
        api_key: a key with `write` scope (`admin` to start an experiment); default `MOVIEREC_API_KEY`
            or the admin key in `DATA_DIR/admin-api-key`.
        seed: same seed, same users, splits, schedule and clicks.
        k: length of each recommendation list.
        dataset: where the users' true ratings come from (must be the dataset the API serves).
        concurrency: requests in flight at most.
        console: where to draw progress; None for none.
        transport: an HTTP transport to use instead of the network (tests).

    Raises:
        ReplayError: no API key, or the experiment cannot receive traffic.
        ApiFailure: the API refused a request for good.
    """
    settings = get_settings()
    key = api_key or default_api_key(settings)
    if not key:
        raise ReplayError(
            "no API key: pass one, set MOVIEREC_API_KEY, or start the API once so it writes DATA_DIR/admin-api-key"
        )
    return asyncio.run(
        _run(
            users=users,
            days=days,
            experiment=experiment,
            api_url=api_url or settings.api_base_url,
            api_key=key,
            seed=seed,
            k=k,
            dataset=dataset,
            concurrency=concurrency,
            console=console,
            transport=transport,
        )
    )


async def _wait_for_model(client: ReplayClient, timeout: float, retrain_after: float) -> str:
    """Poll `/ready` until a model is served; queue one retrain if none appears for a while."""
    started = time.monotonic()
    asked = False
    while True:
        try:
            ready = await client.ready()
        except (httpx.TransportError, ValueError) as exc:  # the API may still be starting
            ready = {"detail": repr(exc)}
        checks = ready.get("checks") or {}
        if checks.get("model") == "ok":
            return str(ready.get("model_version"))
        waited = time.monotonic() - started
        if not asked and waited > retrain_after:
            logger.info("no model served after %.0fs: queueing a retrain", waited)
            try:
                await client.retrain()
            except ApiFailure as exc:
                logger.warning("could not queue a retrain: %s", exc)
            asked = True
        if waited > timeout:
            raise ReplayError(f"the API served no model within {timeout:.0f}s (last answer: {ready})")
        await asyncio.sleep(POLL_SECONDS)


async def _seed(
    *,
    api_url: str,
    api_key: str,
    users: int,
    days: int,
    seed: int,
    wait: float,
    console: Console | None,
    dataset: str,
    transport: httpx.AsyncBaseTransport | None,
) -> ReplayReport | None:
    async with ReplayClient(api_url, api_key, transport=transport) as client:
        version = await _wait_for_model(client, wait, retrain_after=RETRAIN_AFTER_SECONDS)
        logger.info("API serves model %s", version)
        existing = await _find_experiment(client, DEMO_EXPERIMENT)
        if existing is not None and existing["status"] != "draft":
            logger.info(
                "demo experiment %s is already %s: nothing to seed", DEMO_EXPERIMENT, existing["status"]
            )
            return None
        running = [e for e in await client.list_experiments() if e["status"] == "running"]
        if running:
            logger.info("experiment %s is running: leaving it alone, no demo seeded", running[0]["name"])
            return None
        if existing is None:
            existing = await client.create_experiment(DEMO_EXPERIMENT_BODY)
        await client.start_experiment(existing["id"])
    return await _run(
        users=users,
        days=days,
        experiment=DEMO_EXPERIMENT,
        api_url=api_url,
        api_key=api_key,
        seed=seed,
        k=10,
        dataset=dataset,
        concurrency=8,
        console=console,
        transport=transport,
    )


def seed_demo(
    *,
    api_url: str | None = None,
    api_key: str | None = None,
    users: int = 200,
    days: int = 14,
    seed: int = 7,
    wait: float = 900.0,
    console: Console | None = None,
    dataset: str = "ml-100k",
    transport: httpx.AsyncBaseTransport | None = None,
) -> ReplayReport | None:
    """Create and start the demo experiment (SVD control vs hybrid, 50/50) and replay traffic into it.

    Idempotent: does nothing when the demo experiment has already run, or when another experiment
    is running. Waits up to `wait` seconds for the API to serve a model (queueing one retrain if
    none appears within a minute). `dataset` must be the one the API serves; `transport` is for tests.

    Returns:
        The replay's report, or None when nothing was seeded.
    """
    settings = get_settings()
    key = api_key or default_api_key(settings)
    if not key:
        raise ReplayError(
            "no API key: set MOVIEREC_API_KEY or start the API so it writes DATA_DIR/admin-api-key"
        )
    return asyncio.run(
        _seed(
            api_url=api_url or settings.api_base_url,
            api_key=key,
            users=users,
            days=days,
            seed=seed,
            wait=wait,
            console=console,
            dataset=dataset,
            transport=transport,
        )
    )


def report_table(report: ReplayReport) -> Table:
    """The replay's outcome per variant, for the terminal."""
    table = Table(
        title=f"replayed {report.users:,} users, {report.sessions:,} sessions in {report.seconds:.0f}s "
        f"({report.requests:,} requests, {report.throttled:,} throttled)"
    )
    for column in ("variant", "users", "lists", "impressions", "clicks", "CTR"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, arm in sorted(report.arms.items()):
        table.add_row(
            name,
            f"{len(arm.users):,}",
            f"{arm.lists:,}",
            f"{arm.impressions:,}",
            f"{arm.clicks:,}",
            f"{arm.ctr:.2%}",
        )
    return table
