"""PostgreSQL is restarted while ratings are POSTed with `Idempotency-Key`: nothing acknowledged is lost."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text

from tests.resilience.conftest import ADMIN, ApiProcess, Measurement, Stack, assert_problem, record

WRITES = 240
STOP_AFTER = 60  # acknowledged writes before PostgreSQL goes down
DOWN_SECONDS = 2.0
AFTER_RESTART = 40  # the last writes wait until PostgreSQL is back, so some are sent after the restart


@dataclass
class Write:
    key: str
    body: dict[str, float | int]
    status: int = 0
    response: httpx.Response | None = None
    done_at: float = 0.0


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[ApiProcess]:
    yield stack.start_api()


def unrated_pairs(stack: Stack, count: int) -> list[tuple[int, int]]:
    ratings = stack.trained.dataset.ratings
    rated = set(zip(ratings["user_id"].tolist(), ratings["movie_id"].tolist(), strict=True))
    users = sorted(set(ratings["user_id"].tolist()))
    movies = sorted(set(stack.trained.dataset.movies["movie_id"].tolist()))
    pairs = [(u, m) for m in movies for u in users if (u, m) not in rated]
    return pairs[:count]


def stored(stack: Stack) -> dict[tuple[int, int], list[float]]:
    with stack.engine.connect() as connection:
        rows = connection.execute(text("SELECT user_id, movie_id, rating FROM rating"))
        out: dict[tuple[int, int], list[float]] = {}
        for user_id, movie_id, rating in rows:
            out.setdefault((int(user_id), int(movie_id)), []).append(float(rating))
    return out


def test_acknowledged_ratings_survive_and_failed_ones_retry_exactly_once(
    stack: Stack, api: ApiProcess
) -> None:
    writes = [
        Write(str(uuid.uuid4()), {"user_id": u, "movie_id": m, "rating": float(1 + (u + m) % 9) / 2 + 0.5})
        for u, m in unrated_pairs(stack, WRITES)
    ]
    assert len(writes) == WRITES
    before = stored(stack)
    acknowledged = threading.Event()
    back = threading.Event()
    ok_count = 0

    def post_all() -> None:
        nonlocal ok_count
        with httpx.Client(base_url=api.url, headers=ADMIN, timeout=15) as client:
            for i, write in enumerate(writes):
                if i == WRITES - AFTER_RESTART:
                    back.wait(60)
                response = client.post("/v1/ratings", json=write.body, headers={"Idempotency-Key": write.key})
                write.status, write.response = response.status_code, response
                write.done_at = time.monotonic()
                if response.is_success:
                    ok_count += 1
                    if ok_count == STOP_AFTER:
                        acknowledged.set()
                time.sleep(0.01)

    poster = threading.Thread(target=post_all)
    poster.start()
    # when PostgreSQL is stopped (fast shutdown: open transactions are cut) and started again
    assert acknowledged.wait(60), "the first writes were never acknowledged"
    stack.postgres.stop()
    time.sleep(DOWN_SECONDS)
    stack.postgres.start()
    back_at = time.monotonic()
    back.set()
    poster.join(timeout=120)
    assert not poster.is_alive()
    # then the writes after the restart succeed again
    back_ok = [write.done_at for write in writes if write.status == 201 and write.done_at >= back_at]
    assert back_ok, "no write succeeded after PostgreSQL came back"
    recovered = min(back_ok) - back_at
    failed = [write for write in writes if not (write.response is not None and write.response.is_success)]
    assert failed, "no write failed: PostgreSQL was not down while writing"
    assert writes[-1].status == 201, writes[-1].response.text if writes[-1].response else None
    # and every failure is a clean 503 problem with Retry-After
    for write in failed:
        assert write.response is not None
        assert_problem(write.response, 503)
        assert write.response.headers["Retry-After"].isdigit()
    # and every acknowledged write is stored, with its value
    after = stored(stack)
    ok = [write for write in writes if write.status in (200, 201)]
    lost = [
        w for w in ok if after.get((int(w.body["user_id"]), int(w.body["movie_id"]))) != [w.body["rating"]]
    ]
    assert not lost, lost[:5]
    # when the failed ones are retried with the same keys
    recovered_at = time.monotonic()
    with httpx.Client(base_url=api.url, headers=ADMIN, timeout=15) as client:
        for write in failed:
            retry = client.post("/v1/ratings", json=write.body, headers={"Idempotency-Key": write.key})
            # then each succeeds (201, or the stored answer if its commit did land before the cut)
            assert retry.status_code == 201, retry.text
            again = client.post("/v1/ratings", json=write.body, headers={"Idempotency-Key": write.key})
            assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
            assert again.json() == retry.json()
        # and an acknowledged one retried is replayed, not written again
        replay = client.post("/v1/ratings", json=ok[0].body, headers={"Idempotency-Key": ok[0].key})
        assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    retried_seconds = time.monotonic() - recovered_at
    # and every rating is there exactly once, nothing else changed
    final = stored(stack)
    for write in writes:
        assert final[(int(write.body["user_id"]), int(write.body["movie_id"]))] == [write.body["rating"]]
    assert len(final) == len(before) + WRITES
    with stack.engine.connect() as connection:
        keys = connection.scalar(
            text("SELECT count(*) FROM idempotency_key WHERE key = ANY(:keys)"),
            {"keys": [write.key for write in writes]},
        )
    assert keys == WRITES
    record(
        Measurement(
            scenario="postgres",
            fault=f"PostgreSQL stopped for {DOWN_SECONDS:.0f} s and restarted during rating POSTs",
            requests=WRITES + 2 * len(failed) + 1,
            errors=len(failed),
            data_lost=len(lost),
            recovery_seconds=recovered,
            notes=(
                f"{len(failed)} writes got 503 problem+json; their retries with the same "
                f"Idempotency-Key applied once ({retried_seconds:.2f} s for all)"
            ),
        )
    )
