"""The replay against a fake API that checks every request with the API's own schemas."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from services.simulate import run as run_module
from services.simulate.client import ReplayClient
from services.simulate.plan import RATING_DELAY, build_plan
from services.simulate.replay import ReplayReport, replay
from services.simulate.run import ReplayError, run_replay, seed_demo
from tests.simulate.fake_api import UNRATED, FakeApi

DATASET = "synth:4000:1"
KEY = "mr_test"


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return run_module.load_ratings(DATASET)


def play(fake: FakeApi) -> ReplayReport:
    async def go() -> ReplayReport:
        async with ReplayClient("http://api", KEY, transport=fake.transport()) as client:
            return await replay(fake.plan, client, k=10, seed=1)

    return asyncio.run(go())


class TestReplay:
    def test_clicks_only_what_users_truly_liked_later(self, ratings: pd.DataFrame) -> None:
        # given
        now = datetime.now(UTC)
        plan = build_plan(ratings, users=30, days=5, seed=2, end=now)
        fake = FakeApi(plan)
        # when
        report = play(fake)
        # then
        by_account = {
            uid: next(u for u in plan if name.endswith(f"-ml{u.source_id}"))
            for uid, name in fake.users.items()
        }
        clicks = [e for e in fake.events if e.type == "click"]
        assert clicks, "the oracle variant recommends liked movies: someone must click"
        for click in clicks:
            assert click.movie_id in by_account[click.user_id].liked_future
        assert all(e.movie_id not in UNRATED for e in clicks)
        # each click is followed by a view and a rating with the true stars, two hours later
        for kind in ("view", "rating"):
            assert sorted((e.user_id, e.movie_id) for e in fake.events if e.type == kind) == sorted(
                (e.user_id, e.movie_id) for e in clicks
            )
        for rating_event in (e for e in fake.events if e.type == "rating"):
            assert rating_event.movie_id is not None
            truth = by_account[rating_event.user_id].future[rating_event.movie_id]
            assert rating_event.value == truth
            click = next(
                c for c in clicks if (c.user_id, c.movie_id) == (rating_event.user_id, rating_event.movie_id)
            )
            assert rating_event.occurred_at is not None and click.occurred_at is not None
            assert rating_event.occurred_at - click.occurred_at == RATING_DELAY
        assert report.ratings == len(clicks)

    def test_gives_each_account_its_past_then_its_liked_futures(self, ratings: pd.DataFrame) -> None:
        plan = build_plan(ratings, users=10, days=3, seed=2, end=datetime.now(UTC))
        fake = FakeApi(plan)
        play(fake)
        for uid, name in fake.users.items():
            user = next(u for u in plan if name.endswith(f"-ml{u.source_id}"))
            posted = [(r.movie_id, r.rating) for r in fake.rating_posts if r.user_id == uid]
            assert sorted(posted[: len(user.past)]) == sorted(user.past)
            assert all(user.future[m] == stars for m, stars in posted[len(user.past) :])

    def test_impressions_cover_every_list_with_timestamps_in_the_period(self, ratings: pd.DataFrame) -> None:
        now = datetime.now(UTC)
        plan = build_plan(ratings, users=20, days=4, seed=3, end=now)
        fake = FakeApi(plan)
        play(fake)
        impressions = [e for e in fake.events if e.type == "impression"]
        assert len(impressions) == 10 * sum(len(u.sessions) for u in plan)
        assert {e.position for e in impressions} == set(range(10))
        times = [e.occurred_at for e in fake.events if e.occurred_at is not None]
        assert min(times) >= now - timedelta(days=5)
        assert max(times) <= now
        assert len({e.request_id for e in impressions}) == sum(len(u.sessions) for u in plan)

    def test_the_better_variant_wins(self, ratings: pd.DataFrame) -> None:
        plan = build_plan(ratings, users=40, days=7, seed=4, end=datetime.now(UTC))
        fake = FakeApi(plan)
        fake.experiments.append({"id": 1, "name": "fake", "status": "running"})
        report = play(fake)
        arms = report.arms
        assert set(arms) == {"oracle", "popular"}
        assert arms["popular"].clicks == 0
        assert arms["oracle"].ctr > 0.05
        assert report.experiments == {"fake"}

    def test_waits_when_throttled(self, ratings: pd.DataFrame) -> None:
        plan = build_plan(ratings, users=3, days=2, seed=5, end=datetime.now(UTC))
        fake = FakeApi(plan, throttle_first=3)
        report = play(fake)
        assert report.throttled == 3
        assert len(fake.users) == 3


class TestRunReplay:
    def test_starts_a_draft_experiment(self, ratings: pd.DataFrame) -> None:
        plan = build_plan(ratings, users=8, days=3, seed=0, end=datetime.now(UTC))
        fake = FakeApi(plan)
        fake.experiments.append({"id": 7, "name": "trial", "status": "draft"})
        report = run_replay(
            users=8, days=3, experiment="trial", api_url="http://api", api_key=KEY, dataset=DATASET,
            transport=fake.transport(),
        )  # fmt: skip
        assert fake.experiments[0]["status"] == "running"
        assert report.experiments == {"trial"}
        assert report.users == 8

    @pytest.mark.parametrize(
        ("experiments", "message"),
        [
            ([], "no experiment named 'trial'"),
            ([{"id": 1, "name": "trial", "status": "stopped"}], "is stopped"),
        ],
    )
    def test_refuses_what_cannot_take_traffic(
        self, ratings: pd.DataFrame, experiments: list[dict[str, object]], message: str
    ) -> None:
        fake = FakeApi(build_plan(ratings, users=2, days=2, seed=0, end=datetime.now(UTC)))
        fake.experiments.extend(experiments)
        with pytest.raises(ReplayError, match=message):
            run_replay(users=2, days=2, experiment="trial", api_url="http://api", api_key=KEY, dataset=DATASET,
                       transport=fake.transport())  # fmt: skip
        assert not fake.users

    def test_needs_a_key(self, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
        monkeypatch.delenv("MOVIEREC_API_KEY", raising=False)
        monkeypatch.setattr(run_module, "default_api_key", lambda settings: None)
        with pytest.raises(ReplayError, match="no API key"):
            run_replay(users=1, days=1, api_url="http://api")


class TestSeedDemo:
    def _fake(self, ratings: pd.DataFrame, **kwargs: object) -> FakeApi:
        plan = build_plan(ratings, users=12, days=7, seed=7, end=datetime.now(UTC))
        return FakeApi(plan, **kwargs)  # type: ignore[arg-type]

    def test_creates_starts_and_fills_the_demo_once(self, ratings: pd.DataFrame) -> None:
        fake = self._fake(ratings)
        report = seed_demo(api_url="http://api", api_key=KEY, users=12, days=7, dataset=DATASET,
                           transport=fake.transport())  # fmt: skip
        assert report is not None
        assert [(e["name"], e["status"]) for e in fake.experiments] == [("svd-vs-hybrid", "running")]
        assert report.experiments == {"svd-vs-hybrid"}
        events = len(fake.events)
        again = seed_demo(api_url="http://api", api_key=KEY, users=12, days=7, dataset=DATASET,
                          transport=fake.transport())  # fmt: skip
        assert again is None
        assert len(fake.events) == events

    def test_leaves_a_running_experiment_alone(self, ratings: pd.DataFrame) -> None:
        fake = self._fake(ratings)
        fake.experiments.append({"id": 1, "name": "someone-elses", "status": "running"})
        assert (
            seed_demo(api_url="http://api", api_key=KEY, dataset=DATASET, transport=fake.transport()) is None
        )
        assert len(fake.experiments) == 1
        assert not fake.users

    def test_queues_a_retrain_when_no_model_comes(
        self, ratings: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(run_module, "POLL_SECONDS", 0.01)
        monkeypatch.setattr(run_module, "RETRAIN_AFTER_SECONDS", 0.0)
        fake = self._fake(ratings, model_ready=False)
        report = seed_demo(
            api_url="http://api", api_key=KEY, users=12, dataset=DATASET, transport=fake.transport()
        )
        assert fake.retrains == 1
        assert report is not None

    def test_gives_up_after_waiting(self, ratings: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(run_module, "POLL_SECONDS", 0.01)
        monkeypatch.setattr(run_module, "RETRAIN_AFTER_SECONDS", 1000.0)
        fake = self._fake(ratings, model_ready=False)
        with pytest.raises(ReplayError, match="served no model within"):
            seed_demo(
                api_url="http://api", api_key=KEY, wait=0.05, dataset=DATASET, transport=fake.transport()
            )
