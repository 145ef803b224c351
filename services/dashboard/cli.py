"""Command-line function that serves the dashboard (a plain function; typer reads its annotations)."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from services.settings import get_settings

APP = Path(__file__).with_name("app.py")
CONFIG = Path(__file__).with_name(".streamlit") / "config.toml"
"""Streamlit reads `.streamlit/` from the working directory only, so the options travel as flags."""


def config_flags(path: Path = CONFIG) -> list[str]:
    """Every option of a Streamlit `config.toml` as `--section.option value` flags."""
    flags: list[str] = []

    def walk(prefix: str, table: dict[str, Any]) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
                flags.extend([f"--{prefix}{key}", text])

    with path.open("rb") as file:
        walk("", tomllib.load(file))
    return flags


def streamlit_command(port: int, address: str) -> list[str]:
    """The `streamlit run` command line: our config, this port and address."""
    essentials = ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        *essentials,
        *(config_flags() if CONFIG.is_file() else []),
        "--server.port",
        str(port),
        "--server.address",
        address,
    ]


def serve_dashboard(
    port: Annotated[int | None, typer.Option("--port", help="Default: DASHBOARD_PORT (8501).")] = None,
) -> None:
    """The Streamlit dashboard: experiments, models, data, and a client of the API."""
    settings = get_settings()
    address = "0.0.0.0" if settings.ENVIRONMENT == "production" else "127.0.0.1"
    argv = streamlit_command(port or settings.DASHBOARD_PORT, address)
    # Replace this process, so signals reach Streamlit directly.
    os.execv(argv[0], argv)
