"""The dashboard's SQL against the hand-countable seed in `tests.dashboard.seed`."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import Connection, create_engine, pool

from services.dashboard import queries
from tests.dashboard.seed import EXPECTED


def _experiment_id(connection: Connection, name: str) -> int:
    experiment = queries.get_experiment(connection, name)
    assert experiment is not None
    return experiment.id


class TestExperiments:
    def test_running_experiments_first(self, seeded: Connection) -> None:
        names = [e.name for e in queries.list_experiments(seeded)]
        assert names == ["svd-vs-hybrid", "lopsided", "next-idea"]

    def test_counts_assigned_users(self, seeded: Connection) -> None:
        users = {e.name: e.users for e in queries.list_experiments(seeded)}
        assert users == {"svd-vs-hybrid": 40, "lopsided": 60, "next-idea": 0}

    def test_unknown_experiment(self, seeded: Connection) -> None:
        assert queries.get_experiment(seeded, "nope") is None


class TestVariantMetrics:
    def test_counts_per_variant(self, seeded: Connection) -> None:
        rows = queries.variant_metrics(seeded, _experiment_id(seeded, "svd-vs-hybrid"))
        assert [r.name for r in rows] == ["svd", "hybrid"]
        for row in rows:
            expected = EXPECTED[row.name]
            assert row.assigned_users == expected["users"]
            assert row.exposed_users == expected["users"]
            assert row.impressions == expected["impressions"]
            assert row.clicks == expected["clicks"]
            assert row.clickers == expected["clickers"]
            assert row.requests == 2 * expected["users"]
            assert row.rating_events == expected["clicks"]
        assert rows[0].is_control and rows[0].config == {"strategy": "svd"}
        assert rows[0].ctr == pytest.approx(16 / 200)
        assert rows[1].ctr == pytest.approx(26 / 200)

    def test_per_user_sums(self, seeded: Connection) -> None:
        control = queries.variant_metrics(seeded, _experiment_id(seeded, "svd-vs-hybrid"))[0]
        # users 1-4 click twice, 5-12 once: sum of squares 4·4 + 8·1; everyone has 10 impressions
        assert control.sum_clicks_sq == 24
        assert control.sum_impressions_sq == 20 * 100
        assert control.sum_clicks_impressions == 160
        assert control.sum_ratings_sq == 24

    def test_watched_ratings(self, seeded: Connection) -> None:
        control, treatment = queries.variant_metrics(seeded, _experiment_id(seeded, "svd-vs-hybrid"))
        assert control.watched_users == 12
        assert control.watched_ratings == 16
        assert 3.0 <= control.watched_mean_rating <= 4.0
        assert 4.0 <= treatment.watched_mean_rating <= 5.0
        # control user u rates its k-th click 3 + (u + k) % 2
        values = [3.0 + (u + k) % 2 for u in range(1, 13) for k in range((u <= 12) + (u <= 4))]
        assert control.watched_mean_rating == pytest.approx(sum(values) / len(values))

    def test_draft_experiment_has_no_users(self, seeded: Connection) -> None:
        rows = queries.variant_metrics(seeded, _experiment_id(seeded, "next-idea"))
        assert [(r.name, r.assigned_users, r.impressions) for r in rows] == [
            ("control", 0, 0),
            ("ease", 0, 0),
        ]
        assert all(math.isnan(r.ctr) for r in rows)


class TestCumulativeSeries:
    def test_last_day_equals_the_totals(self, seeded: Connection) -> None:
        experiment_id = _experiment_id(seeded, "svd-vs-hybrid")
        series = queries.cumulative_series(seeded, experiment_id)
        totals = {r.variant_id: r for r in queries.variant_metrics(seeded, experiment_id)}
        last = series[series["day"] == series["day"].max()]
        for row in last.itertuples():
            total = totals[row.variant_id]
            assert row.users == total.assigned_users
            assert row.impressions == total.impressions
            assert row.clicks == total.clicks
            assert row.clickers == total.clickers
            assert row.sum_clicks_sq == total.sum_clicks_sq

    def test_grows_day_by_day(self, seeded: Connection) -> None:
        series = queries.cumulative_series(seeded, _experiment_id(seeded, "svd-vs-hybrid"))
        # users enter on days 0-4 of the experiment, their second session is two days later
        assert series["day"].nunique() == 7
        for _, group in series.groupby("variant_id"):
            assert group["users"].is_monotonic_increasing
            assert group["impressions"].is_monotonic_increasing
        first = series[series["day"] == series["day"].min()]
        assert first["users"].sum() == 8  # user ids divisible by 5

    def test_empty_experiment(self, seeded: Connection) -> None:
        assert queries.cumulative_series(seeded, _experiment_id(seeded, "next-idea")).empty


class TestDataQuality:
    def test_clean_seed(self, seeded: Connection) -> None:
        quality = queries.data_quality(seeded, _experiment_id(seeded, "svd-vs-hybrid"))
        assert quality.events == 400 + 2 * 42
        assert quality.unassigned_events == 0
        assert quality.mismatched_events == 0
        assert quality.users_without_impressions == 0
        assert quality.clicks_without_impression == 0


class TestDataPage:
    def test_totals(self, seeded: Connection) -> None:
        totals = queries.catalog_totals(seeded)
        assert (totals.users, totals.movies) == (40, 12)
        assert totals.events == 400 + 2 * 42 + 60

    def test_rating_distribution_adds_up(self, seeded: Connection) -> None:
        distribution = queries.rating_distribution(seeded)
        assert distribution["ratings"].sum() == queries.catalog_totals(seeded).ratings
        assert set(distribution["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}

    def test_top_movies(self, seeded: Connection) -> None:
        top = queries.top_movies(seeded, limit=3, min_ratings=1)
        assert len(top) == 3
        assert top["ratings"].is_monotonic_decreasing

    def test_genre_mix(self, seeded: Connection) -> None:
        mix = queries.genre_mix(seeded).set_index("genre")
        assert mix.loc["Drama", "movies"] == 6
        assert mix["impressions"].sum() >= 460

    def test_catalog_coverage_and_gini(self, seeded: Connection) -> None:
        overall = queries.catalog_coverage(seeded)
        assert len(overall) == 1
        assert overall.loc[0, "movies_shown"] == 12
        assert overall.loc[0, "coverage"] == pytest.approx(1.0)
        assert 0 < float(overall["gini"].iloc[0]) < 1
        per_variant = queries.catalog_coverage(seeded, _experiment_id(seeded, "svd-vs-hybrid"))
        assert sorted(per_variant["variant"]) == ["hybrid", "svd"]
        assert (per_variant["movies_shown"] == 6).all()
        assert (per_variant["coverage"] == 0.5).all()

    def test_gini_of_a_nearly_uniform_spread(self, seeded: Connection) -> None:
        lopsided = queries.catalog_coverage(seeded, _experiment_id(seeded, "lopsided"))
        # variant a: 45 impressions over 12 movies, nine shown 4 times and three 3 times:
        # G = sum |xi - xj| / (2 n² mean) = 2·9·3·1 / (2·144·3.75) = 0.05
        row = lopsided.set_index("variant").loc["a"]
        assert row["gini"] == pytest.approx(0.05)

    def test_model_versions(self, seeded: Connection) -> None:
        versions = queries.list_model_versions(seeded)
        assert list(versions["version"]) == [3, 2, 1]
        assert versions.loc[0, "status"] == "rejected"
        assert versions.loc[0, "rmse"] == pytest.approx(0.961)


class TestEmptyDatabase:
    def test_everything_answers(self, empty_url: str) -> None:
        engine = create_engine(empty_url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            assert queries.list_experiments(connection) == []
            assert queries.catalog_totals(connection).ratings == 0
            assert math.isnan(queries.catalog_totals(connection).mean_rating)
            assert queries.rating_distribution(connection).empty
            ratings, events = queries.activity_over_time(connection)
            assert ratings.empty and events.empty
            assert queries.top_movies(connection).empty
            assert queries.genre_mix(connection).empty
            assert queries.catalog_coverage(connection).empty
            assert queries.list_model_versions(connection).empty
        engine.dispose()


class TestMlflowUnavailable:
    def test_down_server_raises_quickly(self) -> None:
        from tests.conftest import free_port

        with pytest.raises(queries.MlflowUnavailable):
            queries.list_mlflow_runs(f"http://127.0.0.1:{free_port()}")
