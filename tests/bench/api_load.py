"""API load benchmark: throughput and latency of the hot endpoints against the real stack.

The stack (`tests.bench._stack`) is embedded PostgreSQL + Redis with MovieLens 100K and a model the
worker's retrain trained, precomputed and published, served by `movierec serve api` (uvicorn, one
worker). Load comes from `wrk` (one thread, fixed connections) in another process on 127.0.0.1,
each scenario after a warm-up:

* cache hit: `GET /v1/users/{u}/recommendations?k=10` over the 943 precomputed users;
* cache miss: `GET /v1/users/{u}/recommendations?k=10&exclude_seen=false&genre={g}`, each request a
  (user, genre) pair never asked before. The worker precomputes only the `hybrid` field (seen
  movies left out); the `hybrid|genre=g|seen` field and its `hybrid|seen` base do not exist, so
  every request reads the user's ratings from PostgreSQL, scores the model and writes the list
  back. The API's own `movierec_recommendation_cache_total` counters are read before and after to
  check that the scenario was all misses;
* similar movies: `GET /v1/movies/{m}/similar?k=10` over the 1,682 movies;
* from titles: `POST /v1/recommendations/from-titles` with two fuzzy titles;
* bare: a FastAPI app doing one Redis GET (`tests/bench/_bare_app.py`) under the same uvicorn
  settings: the ceiling the API is compared with.

Run: .venv/bin/python -m tests.bench.api_load [--seconds 20] [--rounds 3] [--connections 16] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from tests.bench._stack import ROOT, Stack, bench_stack, free_port, stop_process, uvicorn_env, wait_ready
from tests.bench.report import write_section

USERS = 943
MOVIES = 1682
# Genres of MovieLens 100K whose names need no URL escaping.
GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
TITLES = (
    "toy story",
    "star wars",
    "raiders of the lost ark",
    "shawshenk redemption",
    "pulp fiction",
    "fargo",
    "godfather",
    "casablanca",
    "silence of the lambs",
    "empire strikes back",
    "braveheart",
    "titanic",
    "twelve monkeys",
    "usual suspects",
    "schindlers list",
    "aladdin",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    connections: int | None = None  # None: the run's --connections
    start: int = 0  # where the script's request counter starts
    warm_start: int | None = 0  # None: no warm-up

    def label(self, connections: int) -> str:
        return f"{self.name}, {self.connections or connections} conn"


# The miss runs take (user, genre) pairs from disjoint ranges of the 943 x 17 = 16,031, so no pair
# is asked twice: 16 connections warm up from 14,000 and measure from 0; 1 connection from 7,000.
SCENARIOS = (
    Scenario("bare"),
    Scenario("cache hit"),
    Scenario("cache miss", warm_start=14_000),
    Scenario("cache miss", connections=1, start=7_000, warm_start=None),
    Scenario("similar"),
    Scenario("from titles"),
)

LUA = r"""
local counter = {start}
local mode = "{mode}"
local genres = {{{genres}}}
local titles = {{{titles}}}
local users, movies = {users}, {movies}
wrk.headers["X-API-Key"] = "{key}"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  if mode == "hit" then
    return wrk.format("GET", "/v1/users/" .. (counter % users + 1) .. "/recommendations?k=10")
  elseif mode == "miss" then
    local user = counter % users + 1
    local genre = genres[(math.floor(counter / users) % #genres) + 1]
    return wrk.format("GET", "/v1/users/" .. user ..
      "/recommendations?k=10&exclude_seen=false&genre=" .. genre)
  elseif mode == "similar" then
    return wrk.format("GET", "/v1/movies/" .. (counter % movies + 1) .. "/similar?k=10")
  elseif mode == "titles" then
    local a = titles[(counter % #titles) + 1]
    local b = titles[(math.floor(counter / #titles) % #titles) + 1]
    return wrk.format("POST", "/v1/recommendations/from-titles", nil,
      '{{"liked": ["' .. a .. '", "' .. b .. '"], "k": 10}}')
  else
    return wrk.format("GET", "/bare/" .. (counter % users + 1))
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass
class Result:
    scenario: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    hits: int | None = None
    misses: int | None = None
    load: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


MODES = {
    "bare": "bare",
    "cache hit": "hit",
    "cache miss": "miss",
    "similar": "similar",
    "from titles": "titles",
}


def lua_script(mode: str, key: str, start: int) -> str:
    return LUA.format(
        start=start,
        mode=mode,
        key=key,
        users=USERS,
        movies=MOVIES,
        genres=", ".join(f'"{genre}"' for genre in GENRES),
        titles=", ".join(f'"{title}"' for title in TITLES),
    )


def run_wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run (one thread); the numbers its `done` callback printed."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    match = re.search(r"^RESULT (\{.*\})$", completed.stdout, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    data: dict[str, float] = json.loads(match.group(1))
    return data


def cache_counters(api_url: str) -> dict[str, float]:
    """`movierec_recommendation_cache_total` by result, from the API's /metrics."""
    text = httpx.get(f"{api_url}/metrics", timeout=10).text
    found = re.findall(r'^movierec_recommendation_cache_total\{result="(\w+)"\} ([0-9.e+]+)$', text, re.M)
    return {result: float(value) for result, value in found}


@contextmanager
def bare_server(redis_url: str, payload: bytes) -> Iterator[str]:
    """The one-Redis-GET app under uvicorn, one worker, as the API runs."""
    client = redis.Redis.from_url(redis_url)
    client.set("bench:bare", payload)
    client.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "tests.bench._bare_app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=uvicorn_env(BARE_REDIS_URL=redis_url))
    try:
        wait_ready(url, process, timeout=60)
        yield url
    finally:
        stop_process(process)


def run_scenario(
    stack: Stack,
    bare_url: str,
    folder: Path,
    scenario: Scenario,
    seconds: float,
    warmup: float,
    connections: int,
) -> Result:
    """One wrk run of `scenario` (after its warm-up), with the API's cache counters around it."""
    mode = MODES[scenario.name]
    url = bare_url if mode == "bare" else stack.api_url
    clients = scenario.connections or connections
    if scenario.warm_start is not None:
        warm = folder / f"{mode}-{clients}-warm.lua"
        warm.write_text(lua_script(mode, stack.api_key, scenario.warm_start))
        run_wrk(url, warm, warmup, clients)
    script = folder / f"{mode}-{clients}.lua"
    script.write_text(lua_script(mode, stack.api_key, scenario.start))
    before = cache_counters(stack.api_url)
    data = run_wrk(url, script, seconds, clients)
    after = cache_counters(stack.api_url)
    errors = int(sum(data[name] for name in ("connect", "read", "write", "status", "timeout")))
    result = Result(
        scenario.label(connections),
        int(data["requests"]),
        data["duration_us"] / 1e6,
        data["p50_us"] / 1000,
        data["p90_us"] / 1000,
        data["p99_us"] / 1000,
        data["max_us"] / 1000,
        errors,
        load=os.getloadavg()[0],
    )
    if mode in ("hit", "miss"):
        result.hits = int(after.get("hit", 0) - before.get("hit", 0))
        result.misses = int(after.get("miss", 0) - before.get("miss", 0))
    print(
        f"{result.scenario:28} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms"
        f"  p99 {result.p99_ms:6.2f} ms  errors {errors}  hits {result.hits} misses {result.misses}"
        f"  load {result.load:.1f}",
        flush=True,
    )
    return result


def median_run(results: list[Result]) -> Result:
    """The run of median throughput (its own latencies, not a mix of runs)."""
    return sorted(results, key=lambda result: result.rps)[len(results) // 2]


def measure(
    stack: Stack, bare_url: str, folder: Path, seconds: float, warmup: float, connections: int, rounds: int
) -> tuple[list[Result], dict[str, list[Result]]]:
    """Every scenario; the bare endpoint and the cache hit `rounds` times each, alternating, so that
    both see the same machine (a shared machine's speed drifts by tens of percent over minutes)."""
    paired: dict[str, list[Result]] = {}
    for _ in range(rounds):
        for scenario in SCENARIOS[:2]:
            result = run_scenario(stack, bare_url, folder, scenario, seconds, warmup, connections)
            paired.setdefault(result.scenario, []).append(result)
    results = [median_run(runs) for runs in paired.values()]
    for scenario in SCENARIOS[2:]:
        results.append(run_scenario(stack, bare_url, folder, scenario, seconds, warmup, connections))
    return results, paired


def verdicts(results: list[Result], connections: int) -> list[str]:
    by = {result.scenario: result for result in results}
    bare, hit = by[f"bare, {connections} conn"], by[f"cache hit, {connections} conn"]
    miss, single = by[f"cache miss, {connections} conn"], by["cache miss, 1 conn"]
    share = hit.rps / bare.rps
    ratio = hit.p99_ms / bare.p99_ms
    lines = [
        f"- cache hit throughput is {share:.0%} of the bare endpoint's (target >= 60%: "
        f"{'met' if share >= 0.6 else 'not met'}); its p99 is {ratio:.1f}x the bare p99 "
        f"(target <= 2x: {'met' if ratio <= 2 else 'not met'}).",
        f"- cache miss p99 is {single.p99_ms:.1f} ms with one connection, the time one miss takes "
        f"(target < 25 ms: {'met' if single.p99_ms < 25 else 'not met'}), and {miss.p99_ms:.1f} ms with "
        f"{connections} connections, where requests queue behind each other "
        f"({'met' if miss.p99_ms < 25 else 'not met'}).",
    ]
    for result in (miss, single):
        if result.hits:
            lines.append(f"- warning: {result.hits} requests of `{result.scenario}` were cache hits.")
    return lines


def table(results: list[Result]) -> str:
    rows = [
        "| scenario | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | cache hit / miss "
        "| load avg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        cache = f"{r.hits:,} / {r.misses:,}" if r.hits is not None and r.misses is not None else "-"
        rows.append(
            f"| {r.scenario} | {r.requests:,} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.max_ms:.1f} | {r.errors} | {cache} | {r.load:.1f} |"
        )
    return "\n".join(rows)


def report(
    results: list[Result],
    paired: dict[str, list[Result]],
    seconds: float,
    warmup: float,
    connections: int,
    stack: Stack,
) -> str:
    rounds = "\n".join(
        f"- {name}: " + ", ".join(f"{run.rps:,.0f} req/s (p99 {run.p99_ms:.1f} ms)" for run in runs)
        for name, runs in paired.items()
    )
    bares, hits = paired[f"bare, {connections} conn"], paired[f"cache hit, {connections} conn"]
    pairs = list(zip(bares, hits, strict=True))
    rounds += (
        "\n\nRun by run (each cache-hit run against the bare run just before it): "
        + ", ".join(f"{hit.rps / bare.rps:.0%}" for bare, hit in pairs)
        + " of the throughput; p99 "
        + ", ".join(f"{hit.p99_ms / bare.p99_ms:.1f}x" for bare, hit in pairs)
        + "."
    )
    return f"""Measured 2026-11-21 with `.venv/bin/python -m tests.bench.api_load` on the development machine
(2 shared cores: the API, PostgreSQL, Redis and the load generator all run on them). The stack is
embedded PostgreSQL and Redis with MovieLens 100K, the model the worker's retrain published
(`{stack.model_version.split("-")[0]}`, {stack.users_precomputed} users precomputed), and
`movierec serve api` (uvicorn, 1 worker, LOG_LEVEL WARNING, rate limit out of the way). Load: `wrk`
(1 thread, {connections} connections unless the row says otherwise) on 127.0.0.1, {seconds:.0f} s
per scenario after a {warmup:.0f} s warm-up. `load avg` is the machine's 1-minute load average at the
end of each run: with 2 cores, anything above about 3 means other jobs were competing for them and
the tail latencies say more about the machine than about the API.

{table(results)}

{chr(10).join(verdicts(results, connections))}

The bare endpoint and the cache hit ran {len(next(iter(paired.values())))} times each, alternating;
the table shows each one's median run. All runs:

{rounds}

Scenarios:

- **bare**: `tests/bench/_bare_app.py`, one asyncio Redis GET of a 2 KB value per request, same
  uvicorn settings, its heap frozen after startup as the API's is; the ceiling for anything that
  reads Redis once.
- **cache hit**: `GET /v1/users/{{u}}/recommendations?k=10` over the 943 precomputed users: API key
  check (in-process key cache), rate-limit count and cache read in one Lua call (one round trip),
  A/B assignment, top 10 of the stored 100, metrics and request id. Served by the fast path
  (`API_FAST_PATH`: the endpoint's code without routing and validation, for plainly valid requests).
- **cache miss**: `GET /v1/users/{{u}}/recommendations?k=10&exclude_seen=false&genre={{g}}`, every
  request a (user, genre) pair not asked before: the worker only precomputes the list with seen
  movies left out, so neither the `hybrid|genre=g|seen` field nor its `hybrid|seen` base exists.
  Each request reads the user's ratings from PostgreSQL, scores the hybrid, filters the genre and
  writes the list back. The hit / miss column is the API's own `movierec_recommendation_cache_total`
  over the measured run. With one connection the latency is the time one miss takes; with 16 it
  includes the wait behind the misses ahead of it in the single worker (two computed at a time,
  `API_COMPUTE_CONCURRENCY`): 16 connections over about 140 misses a second is 115 ms by itself.
- **similar**: `GET /v1/movies/{{m}}/similar?k=10` over the 1,682 movies (in-memory model).
- **from titles**: `POST /v1/recommendations/from-titles` with two fuzzy-matched titles, `k=10`.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of bare and cache hit")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with bench_stack() as stack, tempfile.TemporaryDirectory(prefix="movierec-wrk-") as tmp:
        sample = httpx.get(f"{stack.api_url}/v1/users/1/recommendations?k=10", headers=stack.headers)
        sample.raise_for_status()
        payload = sample.content.ljust(2048)
        with bare_server(stack.redis_url, payload) as bare_url:
            results, paired = measure(
                stack, bare_url, Path(tmp), args.seconds, args.warmup, args.connections, args.rounds
            )
        body = report(results, paired, args.seconds, args.warmup, args.connections, stack)
    print(body)
    if not args.no_write:
        write_section("API load", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
