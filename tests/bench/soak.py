"""Soak benchmark: steady mixed traffic against the real stack, watched every 10 seconds.

The stack is `tests.bench._stack` (MovieLens 100K, a model the worker's retrain published,
`movierec serve api` with one uvicorn worker). A second process sends requests on a fixed schedule
(open loop: a slow answer does not slow the schedule down) on 127.0.0.1:

    40% GET /v1/users/{u}/recommendations   15% GET /v1/movies/{m}/similar
    15% GET /v1/movies (page or search)      20% POST /v1/ratings with an Idempotency-Key
    10% POST /v1/events

One rating in 20 is sent twice with the same key and body (a client retry): both answers must be
2xx, and only one write may happen. Every rating is a (user, movie) pair the run uses once, so at
the end each 2xx rating must be in PostgreSQL with the value sent, and the `event` table must hold
exactly the events the API accepted: anything missing is data lost.

Every 10 seconds: requests, errors (transport errors and 5xx; 4xx would be a bug of this script
and count too), p99 of the window, and the API process's RSS.

Run: .venv/bin/python -m tests.bench.soak [--minutes 10] [--rate 50] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.bench._stack import Stack, bench_stack
from tests.bench.report import write_section

WINDOW = 10.0
USERS = 943
MOVIES = 1682
SEARCHES = ("star", "love", "the", "shawshenk", "godfather", "toy", "night", "war")
MIX = (("recommendations", 40), ("similar", 15), ("movies", 15), ("rating", 20), ("event", 10))


@dataclass
class Plan:
    api_url: str
    api_key: str
    seconds: float
    rate: float
    out: str
    seed: int = 42


def _kinds(rng: random.Random, count: int) -> list[str]:
    names = [name for name, _ in MIX]
    weights = [weight for _, weight in MIX]
    return rng.choices(names, weights, k=count)


async def _drive(plan: Plan) -> dict[str, Any]:
    rng = random.Random(plan.seed)
    total = int(plan.seconds * plan.rate)
    kinds = _kinds(rng, total)
    used_pairs: set[tuple[int, int]] = set()
    records: list[tuple[float, str, int, float]] = []  # (epoch, kind, status or -1, latency ms)
    ratings: list[dict[str, Any]] = []
    events_accepted = 0
    retries = {"sent": 0, "replayed": 0}
    headers = {"X-API-Key": plan.api_key}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)

    async with httpx.AsyncClient(base_url=plan.api_url, headers=headers, limits=limits, timeout=30) as client:

        async def send(kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
            started = time.perf_counter()
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.HTTPError:
                records.append((time.time(), kind, -1, (time.perf_counter() - started) * 1000))
                return None
            records.append((time.time(), kind, response.status_code, (time.perf_counter() - started) * 1000))
            return response

        async def one(kind: str) -> None:
            nonlocal events_accepted
            if kind == "recommendations":
                user = rng.randint(1, USERS)
                await send(
                    kind, "GET", f"/v1/users/{user}/recommendations", params={"k": rng.choice((5, 10, 20))}
                )
            elif kind == "similar":
                await send(kind, "GET", f"/v1/movies/{rng.randint(1, MOVIES)}/similar", params={"k": 10})
            elif kind == "movies":
                if rng.random() < 0.5:
                    params: dict[str, Any] = {"q": rng.choice(SEARCHES), "page_size": 10}
                else:
                    params = {"page": rng.randint(1, 80), "page_size": 20}
                await send(kind, "GET", "/v1/movies", params=params)
            elif kind == "rating":
                while True:
                    pair = (rng.randint(1, USERS), rng.randint(1, MOVIES))
                    if pair not in used_pairs:
                        used_pairs.add(pair)
                        break
                body = {"user_id": pair[0], "movie_id": pair[1], "rating": rng.randint(1, 10) / 2}
                key = {"Idempotency-Key": str(uuid.uuid4())}
                response = await send(kind, "POST", "/v1/ratings", json=body, headers=key)
                if response is not None and response.is_success:
                    ratings.append(body)
                    if rng.random() < 0.05:  # a client retry of the same request
                        retries["sent"] += 1
                        again = await send(kind, "POST", "/v1/ratings", json=body, headers=key)
                        if again is not None and again.headers.get("Idempotent-Replayed") == "true":
                            retries["replayed"] += 1
            else:
                event = {
                    "type": rng.choice(("impression", "click", "view")),
                    "user_id": rng.randint(1, USERS),
                    "movie_id": rng.randint(1, MOVIES),
                }
                response = await send(kind, "POST", "/v1/events", json=event)
                if response is not None and response.is_success:
                    events_accepted += int(response.json()["accepted"])

        tasks: set[asyncio.Task[None]] = set()
        schedule_epoch = time.time()
        start = time.perf_counter()
        for index, kind in enumerate(kinds):
            delay = start + index / plan.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(kind))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=60)
    return {
        "started": schedule_epoch,
        "records": records,
        "ratings": ratings,
        "events_accepted": events_accepted,
        "retries": retries,
    }


def _driver(plan: Plan) -> None:
    """The load generator's process: run the schedule, write what happened to `plan.out`."""
    result = asyncio.run(_drive(plan))
    Path(plan.out).write_text(json.dumps(result))


def _rss_mb(pid: int) -> float:
    """RSS of the API process and its children, in MB."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 1e6


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _verify(stack: Stack, ratings: list[dict[str, Any]], events_accepted: int) -> tuple[int, int, int]:
    """(ratings missing or wrong in PostgreSQL, events in PostgreSQL, events missing)."""
    import psycopg
    from sqlalchemy import make_url

    url = make_url(stack.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        stored = {
            (user, movie): value
            for user, movie, value in conn.execute(
                "SELECT r.user_id, r.movie_id, r.rating FROM rating r "
                "JOIN unnest(%s::bigint[], %s::bigint[]) AS s(u, m) ON r.user_id = s.u AND r.movie_id = s.m",
                ([r["user_id"] for r in ratings], [r["movie_id"] for r in ratings]),
            )
        }
        events = int(conn.execute("SELECT count(*) FROM event").fetchone()[0])  # type: ignore[index]
    lost = sum(1 for r in ratings if stored.get((r["user_id"], r["movie_id"])) != r["rating"])
    return lost, events, max(0, events_accepted - events)


def run(stack: Stack, minutes: float, rate: float) -> dict[str, Any]:
    seconds = minutes * 60
    out = stack.root / "soak-result.json"
    plan = Plan(stack.api_url, stack.api_key, seconds, rate, str(out))
    context = multiprocessing.get_context("spawn")
    driver = context.Process(target=_driver, args=(plan,), daemon=True)
    samples: list[tuple[float, float]] = [(time.time(), _rss_mb(stack.api_pid))]
    started = time.time()
    driver.start()
    while driver.is_alive():
        driver.join(timeout=WINDOW - (time.time() - started) % WINDOW)
        samples.append((time.time(), _rss_mb(stack.api_pid)))
        print(f"[soak] {time.time() - started:5.0f}s  API RSS {samples[-1][1]:.0f} MB", flush=True)
    if driver.exitcode != 0:
        raise RuntimeError(f"the load generator exited with {driver.exitcode}")
    data = json.loads(out.read_text())
    time.sleep(2)  # anything the API queues off the request path is written by now
    lost, events_stored, events_missing = _verify(stack, data["ratings"], data["events_accepted"])
    return {
        "started": data["started"],
        "seconds": seconds,
        "rate": rate,
        "samples": samples,
        "records": data["records"],
        "ratings_ok": len(data["ratings"]),
        "ratings_lost": lost,
        "events_accepted": data["events_accepted"],
        "events_stored": events_stored,
        "events_missing": events_missing,
        "retries": data["retries"],
    }


def _windows(result: dict[str, Any], width: float) -> list[dict[str, Any]]:
    start = result["started"]
    count = max(1, round(result["seconds"] / width))
    buckets: list[list[tuple[float, str, int, float]]] = [[] for _ in range(count)]
    for record in result["records"]:
        index = min(count - 1, max(0, int((record[0] - start) // width)))
        buckets[index].append(record)
    rows = []
    for index, bucket in enumerate(buckets):
        end = start + (index + 1) * width
        rss = [mb for at, mb in result["samples"] if at <= end + 1]
        errors = sum(1 for _, _, status, _ in bucket if status < 0 or status >= 400)
        rows.append(
            {
                "window": index,
                "requests": len(bucket),
                "errors": errors,
                "p50": _percentile([r[3] for r in bucket], 50),
                "p99": _percentile([r[3] for r in bucket], 99),
                "rss": rss[-1] if rss else float("nan"),
            }
        )
    return rows


def report(result: dict[str, Any], minutes: float) -> str:
    tens = _windows(result, WINDOW)
    per_minute = _windows(result, 60.0) if minutes >= 1 else tens
    records = result["records"]
    total = len(records)
    errors = sum(1 for _, _, status, _ in records if status < 0 or status >= 400)
    rss = [mb for _, mb in result["samples"]]
    p99s = [row["p99"] for row in tens if row["requests"]]
    first, last = p99s[: max(1, len(p99s) // 3)], p99s[-max(1, len(p99s) // 3) :]
    by_kind: dict[str, list[float]] = {}
    for _, kind, _, ms in records:
        by_kind.setdefault(kind, []).append(ms)
    lines = [
        "| minute | requests | req/s | errors | error rate | p50 ms | p99 ms | worst 10 s p99 ms | API RSS MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in per_minute:
        inside = tens[row["window"] * 6 : row["window"] * 6 + 6]
        worst = max((w["p99"] for w in inside if w["requests"]), default=float("nan"))
        rate = row["errors"] / row["requests"] if row["requests"] else 0.0
        lines.append(
            f"| {row['window'] + 1} | {row['requests']:,} | {row['requests'] / 60:.1f} | {row['errors']} | "
            f"{rate:.2%} | {row['p50']:.1f} | {row['p99']:.1f} | {worst:.1f} | {row['rss']:.0f} |"
        )
    kinds = ", ".join(
        f"{kind} {len(values):,} (p99 {_percentile(values, 99):.1f} ms)"
        for kind, values in sorted(by_kind.items())
    )
    retries = result["retries"]
    lost = result["ratings_lost"] + result["events_missing"]
    trend = ""
    if p99s and _percentile(last, 50) > 3 * _percentile(first, 50):
        trend = (
            "\nThe p99 grew through the run: the API did not keep up with this rate on this machine, "
            "and requests queued.\n"
        )
    return f"""Measured 2026-11-21 with `.venv/bin/python -m tests.bench.soak --minutes {minutes:g}` on the
development machine (2 shared cores: the API, PostgreSQL, Redis and the load generator all run on
them). Same stack as [API load](#api-load): MovieLens 100K, the model the worker's retrain
published, `movierec serve api` with one uvicorn worker. A second process sends
{result["rate"]:g} requests/s on a fixed schedule on 127.0.0.1: 40% recommendations, 15% similar
movies, 15% catalog pages and searches, 20% `POST /v1/ratings` with an `Idempotency-Key` (one in 20
retried with the same key), 10% `POST /v1/events`. Sampled every 10 s; the table groups the samples
by minute (p99 of the minute, and the worst of its six 10-second p99s).

{chr(10).join(lines)}

Summary:

- requests: {total:,} in {result["seconds"]:.0f} s; errors: {errors} ({errors / max(1, total):.3%}).
- p99 trend (10 s windows): first third {_percentile(first, 50):.1f} ms median, last third
  {_percentile(last, 50):.1f} ms median; worst window {max(p99s, default=float("nan")):.1f} ms.
- p99 of each 10 s window, ms: {", ".join(f"{p:.0f}" for p in p99s)}.
- API RSS at each 10 s sample, MB: {", ".join(f"{mb:.0f}" for mb in rss)}.
- by kind: {kinds}.
- API process RSS: {rss[0]:.0f} MB at the start, {rss[-1]:.0f} MB at the end, {max(rss):.0f} MB at most.
- ratings answered 2xx: {result["ratings_ok"]:,}, all checked in PostgreSQL with the value sent:
  {result["ratings_lost"]} missing or different. Retries with the same key: {retries["sent"]}, answered
  from the stored response: {retries["replayed"]}. Events accepted: {result["events_accepted"]:,};
  in PostgreSQL: {result["events_stored"]:,}.
- **data lost: {lost}**.
{trend}"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--note", default="", help="a paragraph added to the section")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    args = parser.parse_args()
    with bench_stack() as stack:
        result = run(stack, args.minutes, args.rate)
    body = report(result, args.minutes)
    if args.note:
        body += "\n" + args.note.strip() + "\n"
    print(body)
    if not args.no_write:
        write_section("Soak", body)
    lost = result["ratings_lost"] + result["events_missing"]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
