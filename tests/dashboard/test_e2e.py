"""The dashboard as people see it: `streamlit run` as a real process, opened in headless Chromium.

Skipped only on a developer machine without Chromium; under CI (`CI=true`) a missing Chromium is a
failure, since this is the one test that proves the pages render in a browser.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.dashboard.cli import streamlit_command
from tests.conftest import free_port
from tests.dashboard.screenshots import PAGES, browser, chromium_path, open_page, take_all

UNDER_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = pytest.mark.skipif(
    chromium_path() is None and not UNDER_CI,
    reason="chromium is not installed (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def dashboard(seeded_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard on a free port against the seeded database; yields its URL."""
    if chromium_path() is None:
        pytest.fail("CI=true but chromium is not installed: add `apt-get install -y chromium` to .ci/run")
    port = free_port()
    data_dir = tmp_path_factory.mktemp("dashboard-data")
    env = {
        **os.environ,
        "DATABASE_URL": seeded_url,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "API_URL": f"http://127.0.0.1:{free_port()}",
        "DATA_DIR": str(data_dir),
    }
    log = (data_dir / "streamlit.log").open("wb")
    process = subprocess.Popen(
        streamlit_command(port, "127.0.0.1"), env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start: {(data_dir / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_experiment_table_and_charts_render(dashboard: str) -> None:
    with browser() as chromium:
        # when
        page = open_page(chromium, dashboard)
        # then
        assert page.locator('[data-testid="stException"]').count() == 0
        assert (
            "Hybrid beats svd on CTR by +62.5%"
            in page.locator('[data-testid="stAlertContentSuccess"]').inner_text()
        )
        cells = [
            page.locator(f'[data-testid="glide-cell-{column}-0"]').first.inner_text() for column in range(4)
        ]
        assert cells == ["svd  (control)", "svd @ live", "0.5", "20"]
        assert page.locator('[data-testid="stPlotlyChart"] .main-svg').count() >= 3
        assert page.locator('[data-testid="stPlotlyChart"] .point').count() > 0


def test_every_page_renders_and_screenshots(dashboard: str, tmp_path: Path) -> None:
    written = take_all(dashboard, tmp_path, dark_too=False)
    assert [p.name for p in written] == [f"{name}.png" for name in PAGES]
    assert all(p.stat().st_size > 20_000 for p in written)
