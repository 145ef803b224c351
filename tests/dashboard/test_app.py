"""Each dashboard page rendered by Streamlit's AppTest against the seeded database.

The app opens its own engine from `DATABASE_URL`, so the seed is committed (see `conftest.py`).
MLflow and the API point at closed ports unless a test starts the fake API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import free_port
from tests.dashboard.fake_api import API_KEY, fake_api

APP = str(Path(__file__).resolve().parents[2] / "services" / "dashboard" / "app.py")
TIMEOUT = 60


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """Settings for the app: closed ports for MLflow and the API, an empty DATA_DIR."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("API_URL", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("DATA_DIR", str(tmp_path_factory.mktemp("data")))
        monkeypatch.delenv("MOVIEREC_API_KEY", raising=False)
        yield monkeypatch


@pytest.fixture
def seeded_app(environment: pytest.MonkeyPatch, seeded_url: str) -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DATABASE_URL", seeded_url)
        yield monkeypatch


@pytest.fixture
def empty_app(environment: pytest.MonkeyPatch, empty_url: str) -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DATABASE_URL", empty_url)
        yield monkeypatch


@pytest.fixture
def with_api(seeded_app: pytest.MonkeyPatch) -> Iterator[str]:
    with fake_api() as url:
        seeded_app.setenv("API_URL", url)
        seeded_app.setenv("MOVIEREC_API_KEY", API_KEY)
        yield url


@pytest.fixture(scope="module")
def rendered(environment: pytest.MonkeyPatch, seeded_url: str) -> Iterator[dict[str | None, AppTest]]:
    """Every page rendered once on the seeded database, for the tests that only read them."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("DATABASE_URL", seeded_url)
        yield {page: open_page(page) for page in (None, "pages/models.py", "pages/data.py")}


def open_page(page: str | None = None) -> AppTest:
    """Run the app and, if given, switch to `page` (a path like `pages/models.py`)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    """The text of every element of a kind (markdown, caption, info, ...)."""
    return [str(getattr(element, "value", "")) for element in at.get(kind)]


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first data frame on the page with `column`."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with a {column!r} column")


class TestExperimentsPage:
    def test_variant_table(self, rendered: dict[str | None, AppTest]) -> None:
        # when
        at = rendered[None]
        # then: the seed's hand-counted numbers
        table = frame_with(at, "impressions")
        assert list(table["variant"]) == ["svd  (control)", "hybrid"]
        assert list(table["users"]) == [20, 20]
        assert list(table["impressions"]) == [200, 200]
        assert list(table["clicks"]) == [16, 26]
        assert list(table["CTR"]) == pytest.approx([0.08, 0.13])
        assert list(table["users who clicked"]) == pytest.approx([0.6, 0.8])

    def test_verdict(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered[None]
        # CTR 8% vs 13% over 20 users per arm, each with 10 impressions: per-user click variances
        # 11.2/19 and 12.2/19, so z = 0.05 / sqrt((0.5895 + 0.6421) / 2000) = 2.015, p = 0.044
        assert texts(at, "success") == ["Hybrid beats svd on CTR by +62.5% [+1.3%, +193.5%], p = 0.044"]

    def test_comparison_table(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered[None]
        table = frame_with(at, "95% interval").set_index("metric")
        ctr = table.loc["CTR  ★"]
        assert (ctr["control"], ctr["treatment"], ctr["lift"]) == ("8.00%", "13.00%", "+62.5%")
        assert ctr["significant"] == "yes"
        clickers = table.loc["users who clicked"]
        assert (clickers["control"], clickers["treatment"], clickers["significant"]) == (
            "60.00%",
            "80.00%",
            "no",
        )

    def test_headline_metrics(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered[None]
        values = {m.label: m.value for m in at.metric}
        assert values["users in the experiment"] == "40"
        assert values["CTR · svd (control)"] == "8.00%"
        assert values["CTR · hybrid"] == "13.00%"

    def test_charts_render(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered[None]
        # forest plot, cumulative CTR, cumulative lift
        assert len(at.get("plotly_chart")) == 3

    def test_data_quality_and_missing_guardrails(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered[None]
        quality = frame_with(at, "check")
        assert set(quality["status"]) == {"ok"}
        assert any("Not recorded per variant" in text for text in texts(at, "caption"))
        assert any("API metrics unavailable" in text for text in texts(at, "caption"))

    def test_route_health_from_the_api(self, seeded_app: pytest.MonkeyPatch, with_api: str) -> None:
        at = open_page()
        routes = frame_with(at, "route")
        row = routes.iloc[0]
        assert row["route"] == "GET /v1/users/{user_id}/recommendations"
        assert row["requests"] == 4
        assert row["5xx"] == pytest.approx(0.25)

    def test_sample_ratio_mismatch(self, seeded_app: pytest.MonkeyPatch) -> None:
        at = open_page()
        at.selectbox[0].select("lopsided").run()
        assert not at.exception
        banners = texts(at, "error")
        assert any(text.startswith("**Sample ratio mismatch**") for text in banners)
        assert any("a 45, b 15" in text for text in banners)
        assert any(text.startswith("Sample ratio mismatch: do not trust these results") for text in banners)

    def test_experiment_without_users(self, seeded_app: pytest.MonkeyPatch) -> None:
        at = open_page()
        at.selectbox[0].select("next-idea").run()
        assert not at.exception
        assert any("No users have been exposed yet" in text for text in texts(at, "info"))

    def test_primary_metric_can_change(self, seeded_app: pytest.MonkeyPatch) -> None:
        at = open_page()
        at.selectbox[1].select("clickers").run()
        (verdict,) = texts(at, "info")
        assert verdict.startswith("Not yet significant on users who clicked: about ")

    def test_empty_database(self, empty_app: pytest.MonkeyPatch) -> None:
        at = open_page()
        assert any(text.startswith("No experiments yet") for text in texts(at, "info"))


class TestModelsPage:
    def test_champion_and_challenger(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered["pages/models.py"]
        markdown = texts(at, "markdown")
        assert any(text.startswith("**Champion** &nbsp; v2") for text in markdown)
        assert any(text.startswith("**Latest challenger** &nbsp; v3") for text in markdown)
        rmse = [m.value for m in at.metric if m.label == "RMSE"]
        assert rmse == ["0.9320", "0.9610"]

    def test_rejections_and_versions(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered["pages/models.py"]
        markdown = texts(at, "markdown")
        assert "**v3** · 2026-11-01 09:00 UTC" in markdown
        assert any(text.startswith(":red[✖] worse than the champion: rmse 0.9610") for text in markdown)
        versions = frame_with(at, "status")
        assert list(versions["version"]) == [3, 2, 1]

    def test_what_each_variant_serves(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered["pages/models.py"]
        served = frame_with(at, "strategy")
        assert list(served["strategy"]) == ["svd", "hybrid"]
        assert set(served["model version"]) == {"live → v2"}

    def test_mlflow_down_is_a_message(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered["pages/models.py"]
        assert any("did not answer" in text for text in texts(at, "info"))

    def test_empty_database(self, empty_app: pytest.MonkeyPatch) -> None:
        at = open_page("pages/models.py")
        assert any("No model has been registered yet" in text for text in texts(at, "caption"))


class TestDataPage:
    def test_totals(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered["pages/data.py"]
        values = {m.label: m.value for m in at.metric}
        assert values["users"] == "40"
        assert values["movies"] == "12"
        assert values["events"] == "544"
        assert values["movies ever shown"] == "12 of 12"
        assert values["catalog coverage"] == "100.0%"

    def test_charts(self, rendered: dict[str | None, AppTest]) -> None:
        at = rendered["pages/data.py"]
        # ratings distribution, ratings over time, events over time, top movies, genre mix
        assert len(at.get("plotly_chart")) == 5

    def test_empty_database(self, empty_app: pytest.MonkeyPatch) -> None:
        at = open_page("pages/data.py")
        assert any(text.startswith("The database is empty") for text in texts(at, "info"))


class TestTryItPage:
    def test_recommendations_for_a_user(self, seeded_app: pytest.MonkeyPatch, with_api: str) -> None:
        at = open_page("pages/try_it.py")
        at.number_input[0].set_value(42)
        at.button[0].click().run()
        assert not at.exception
        values = {m.label: m.value for m in at.metric}
        assert values["experiment"] == "svd-vs-hybrid"
        assert values["variant"] == "hybrid"
        assert values["model version"] == "2026-11-21 03:00"
        markdown = texts(at, "markdown")
        assert "**1. Star Wars** (1977)" in markdown
        assert any("because you rated Return of the Jedi 5 stars" in text for text in markdown)

    def test_from_titles(self, seeded_app: pytest.MonkeyPatch, with_api: str) -> None:
        at = open_page("pages/try_it.py")
        at.text_area[0].set_value("star wars\nfargo")
        at.button[1].click().run()
        assert not at.exception
        markdown = texts(at, "markdown")
        assert any(text.startswith("Matched: *star wars* → **Star Wars**") for text in markdown)
        assert "**1. Fargo** (1996)" in markdown

    def test_similar_movies(self, seeded_app: pytest.MonkeyPatch, with_api: str) -> None:
        at = open_page("pages/try_it.py")
        assert "**1. Fargo** (1996)" in texts(at, "markdown")

    def test_api_down(self, seeded_app: pytest.MonkeyPatch) -> None:
        at = open_page("pages/try_it.py")
        assert any("did not answer" in text for text in texts(at, "error"))
        assert any(text.startswith("No API key") for text in texts(at, "warning"))

    def test_wrong_key(self, seeded_app: pytest.MonkeyPatch, with_api: str) -> None:
        seeded_app.setenv("MOVIEREC_API_KEY", "mr_wrong")
        at = open_page("pages/try_it.py")
        at.button[0].click().run()
        assert any("Unauthorized — Invalid API key." in text for text in texts(at, "warning"))


class TestDatabaseTrouble:
    def test_unreachable(self, seeded_app: pytest.MonkeyPatch) -> None:
        seeded_app.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
        at = open_page()
        assert any(text.startswith("Cannot reach the database") for text in texts(at, "error"))

    def test_not_migrated(self, seeded_app: pytest.MonkeyPatch, scratch_database_url: str) -> None:
        seeded_app.setenv("DATABASE_URL", scratch_database_url)
        at = open_page("pages/data.py")
        assert any("has no movierec tables yet" in text for text in texts(at, "warning"))
