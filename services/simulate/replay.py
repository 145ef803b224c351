"""Play a replay plan through the live REST API and report what happened.

Per user: a new account is created and given the user's past ratings; then, session by session,
the API is asked for a list, every movie in it is logged as an impression, and the movies the
user would click (see `services.simulate.plan`) are logged as click, view and rating events, and
rated through `POST /v1/ratings` with the user's true stars, so the next list already knows them.

Sessions run in rounds (everyone's first session, then everyone's second...) so that lists can be
fetched for 100 users per request and events sent 1,000 per request, while each user still sees
their own sessions in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.simulate.client import ReplayClient
from services.simulate.plan import RATING_DELAY, ReplayUser, clicks_for

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total) as the replay advances."""

CLICK_DELAY = timedelta(seconds=40)
VIEW_DELAY = timedelta(minutes=2)


@dataclass
class ArmTally:
    """What one variant served and earned during the replay."""

    users: set[int] = field(default_factory=set)
    lists: int = 0
    impressions: int = 0
    clicks: int = 0

    @property
    def ctr(self) -> float:
        """Clicks per impression."""
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass
class ReplayReport:
    """The replay's outcome."""

    users: int = 0
    sessions: int = 0
    events: int = 0
    ratings: int = 0
    seconds: float = 0.0
    requests: int = 0
    throttled: int = 0
    experiments: set[str] = field(default_factory=set)
    arms: dict[str, ArmTally] = field(default_factory=dict)
    model_versions: set[str] = field(default_factory=set)


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _session_events(
    user_id: int,
    listing: dict[str, Any],
    start: datetime,
    clicked_positions: Sequence[int],
    stars: Sequence[float],
) -> list[dict[str, Any]]:
    """Impressions of the whole list, then click, view and rating events of the clicked movies."""
    request_id = listing["request_id"]
    items = listing["items"]
    events: list[dict[str, Any]] = [
        {
            "type": "impression",
            "user_id": user_id,
            "movie_id": item["id"],
            "request_id": request_id,
            "position": position,
            "occurred_at": _at(start),
        }
        for position, item in enumerate(items)
    ]
    for n, (position, value) in enumerate(zip(clicked_positions, stars, strict=True)):
        movie_id = items[position]["id"]
        click_at = start + CLICK_DELAY * (n + 1)
        common = {"user_id": user_id, "movie_id": movie_id, "request_id": request_id, "position": position}
        events.append({**common, "type": "click", "occurred_at": _at(click_at)})
        events.append({**common, "type": "view", "occurred_at": _at(click_at + VIEW_DELAY), "value": 5400.0})
        events.append(
            {**common, "type": "rating", "occurred_at": _at(click_at + RATING_DELAY), "value": value}
        )
    return events


async def _gather_bounded(coroutines: Sequence[Any], progress: Callable[[], None] | None = None) -> list[Any]:
    async def run(coroutine: Any) -> Any:
        result = await coroutine
        if progress:
            progress()
        return result

    return list(await asyncio.gather(*(run(c) for c in coroutines)))


async def replay(
    plan: Sequence[ReplayUser],
    client: ReplayClient,
    *,
    k: int = 10,
    seed: int = 0,
    run_tag: str | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Create the users, give them their past, and play their sessions.

    Args:
        plan: who visits when (`services.simulate.plan.build_plan`).
        client: the API.
        k: length of each list.
        seed: seeds each user's clicks (with the plan's seed, the replay is repeatable up to the
            models' own answers).
        run_tag: marks the accounts' `external_id` (`replay-<tag>-ml<id>`); random if None.
        progress: called as stages advance.

    Returns:
        What was sent and what each variant earned.
    """
    started = time.monotonic()
    tag = run_tag or uuid.uuid4().hex[:8]
    report = ReplayReport(users=len(plan))
    done = {"n": 0}

    def tick(stage: str, total: int) -> Callable[[], None]:
        done["n"] = 0

        def step() -> None:
            done["n"] += 1
            if progress:
                progress(stage, done["n"], total)

        if progress:
            progress(stage, 0, total)
        return step

    step = tick("accounts", len(plan))
    ids: list[int] = await _gather_bounded(
        [client.create_user(f"replay-{tag}-ml{user.source_id}") for user in plan], step
    )
    total_past = sum(len(user.past) for user in plan)
    step = tick("past ratings", total_past)
    await _gather_bounded(
        [
            client.rate(uid, movie, stars)
            for uid, user in zip(ids, plan, strict=True)
            for movie, stars in user.past
        ],
        step,
    )

    rngs = {
        uid: random.Random(f"{seed}:{user.source_id}:clicks") for uid, user in zip(ids, plan, strict=True)
    }
    clicked: dict[int, set[int]] = {uid: set() for uid in ids}
    rounds = max((len(user.sessions) for user in plan), default=0)
    total_sessions = sum(len(user.sessions) for user in plan)
    step = tick("sessions", total_sessions)
    for round_ in range(rounds):
        active = [(uid, user) for uid, user in zip(ids, plan, strict=True) if len(user.sessions) > round_]
        listings = await client.recommendations([uid for uid, _ in active], k)
        events: list[dict[str, Any]] = []
        ratings: list[tuple[int, int, float]] = []
        for (uid, user), listing in zip(active, listings, strict=True):
            movie_ids = [int(item["id"]) for item in listing["items"]]
            positions = clicks_for(user, movie_ids, clicked[uid], rngs[uid])
            stars = [user.future[movie_ids[p]] for p in positions]
            events.extend(_session_events(uid, listing, user.sessions[round_], positions, stars))
            ratings.extend((uid, movie_ids[p], s) for p, s in zip(positions, stars, strict=True))
            variant = (listing.get("variant") or {}).get("name") or "(no experiment)"
            if listing.get("experiment"):
                report.experiments.add(listing["experiment"]["name"])
            report.model_versions.add(str(listing.get("model_version")))
            arm = report.arms.setdefault(variant, ArmTally())
            arm.users.add(uid)
            arm.lists += 1
            arm.impressions += len(movie_ids)
            arm.clicks += len(positions)
            step()
        report.events += await client.post_events(events)
        await _gather_bounded([client.rate(uid, movie, stars) for uid, movie, stars in ratings])
        report.ratings += len(ratings)
        report.sessions += len(active)
    report.seconds = time.monotonic() - started
    report.requests = client.counters.requests
    report.throttled = client.counters.throttled
    return report
