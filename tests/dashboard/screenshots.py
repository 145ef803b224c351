"""Screenshots of every dashboard page, taken with headless Chromium (Debian's, not a downloaded one).

    .venv/bin/python -m tests.dashboard.screenshots --url http://127.0.0.1:8501 --out docs/screenshots

The end-to-end test uses the same functions against a seeded database; this script is how the
images in `docs/dashboard.md` are made, against a stack filled by `movierec simulate`.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = {"experiments": "", "models": "models", "data": "data", "try-it": "try_it"}
"""Screenshot name -> URL path of the page (Streamlit derives it from the page's file name)."""


def chromium_path() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@contextmanager
def browser() -> Iterator[Browser]:
    """Headless Chromium from the system."""
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def wait_until_rendered(page: Page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the run and every chart is drawn, and the page is still."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
            const drawn = document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg');
            return !document.querySelector('[data-testid="stStatusWidget"]')
                && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
                && Array.from(charts).every(chart => chart.querySelector('.main-svg'))
                && drawn.length >= charts.length;
        }""",
        timeout=timeout_ms,
    )
    # The page is done when its element count stops changing (placeholders become charts, tables fill).
    previous = -1
    for _ in range(int(timeout_ms / 500)):
        count = page.evaluate("() => document.querySelectorAll('[data-testid], .main-svg').length")
        if count == previous:
            break
        previous = count
        page.wait_for_timeout(500)
    page.wait_for_timeout(500)


def open_page(browser: Browser, url: str, *, dark: bool = False, width: int = 1440) -> Page:
    """A new tab on `url`, in the light or dark colour scheme, fully rendered."""
    context = browser.new_context(
        viewport={"width": width, "height": 1000},
        color_scheme="dark" if dark else "light",
        device_scale_factor=1,
    )
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    wait_until_rendered(page)
    return page


def fit_to_content(page: Page) -> None:
    """Grow the viewport to the page's height: Streamlit scrolls inside its own container, so a
    full-page screenshot would otherwise stop at the first screen."""
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            return Math.ceil((main ? main.scrollHeight : document.body.scrollHeight) + 60);
        }"""
    )
    size = page.viewport_size or {"width": 1440, "height": 1000}
    page.set_viewport_size({"width": size["width"], "height": max(int(height), 600)})
    page.wait_for_timeout(1200)


def take_all(base_url: str, out: Path, *, dark_too: bool = True) -> list[Path]:
    """Full-page screenshots of every page (and of the experiments page in dark mode)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with browser() as chromium:
        for name, path in PAGES.items():
            page = open_page(chromium, f"{base_url.rstrip('/')}/{path}")
            if name == "try-it":
                page.get_by_role("button", name="Recommend").first.click()
                page.wait_for_timeout(500)
                wait_until_rendered(page)
            errors = page.locator('[data-testid="stException"]')
            if errors.count():
                raise AssertionError(f"the {name} page shows an exception: {errors.first.inner_text()[:500]}")
            target = out / f"{name}.png"
            fit_to_content(page)
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
            page.context.close()
        if dark_too:
            page = open_page(chromium, base_url, dark=True)
            target = out / "experiments-dark.png"
            fit_to_content(page)
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
            page.context.close()
    return written


def main() -> None:
    """Command line: take the screenshots of a running dashboard."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    for path in take_all(args.url, args.out):
        print(path)


if __name__ == "__main__":
    main()
