"""`serve_dashboard`: the command line it execs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from services.dashboard import cli


def test_streamlit_command_is_headless_and_private() -> None:
    argv = cli.streamlit_command(8599, "127.0.0.1")
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(cli.APP)]
    options = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert options["--server.port"] == "8599"
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"
    # both themes are customised, so the viewer's light/dark choice still applies
    assert {"--theme.light.primaryColor", "--theme.dark.primaryColor"} <= set(options)
    assert "--theme.base" not in options


def test_config_flags_flatten_nested_tables(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\nheadless = true\n[theme.dark]\nprimaryColor = "#000000"\n')
    assert cli.config_flags(config) == ["--server.headless", "true", "--theme.dark.primaryColor", "#000000"]


def test_serve_dashboard_execs_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append(argv))
    cli.serve_dashboard(port=8777)
    (argv,) = calls
    assert argv[argv.index("--server.port") + 1] == "8777"
