"""`movierec serve`: run one service in the foreground (what containers and `movierec up` run)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer

from services.cli.common import console, fail, services
from services.settings import get_settings

app = typer.Typer(help="Run one service in the foreground.", no_args_is_help=True)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    """Replace this process with `argv`, so signals reach the service directly."""
    console.print(f"[dim]exec {' '.join(argv)}[/]")
    os.execvpe(argv[0], argv, {**os.environ, **env})


def _executable(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        raise fail(f"{name} is not installed in this environment")
    return found


@app.command()
def mlflow() -> None:
    """The MLflow tracking server and UI (backend store: PostgreSQL database `mlflow`)."""
    settings = get_settings()
    with services(settings) as urls:
        artifacts = settings.MLFLOW_ARTIFACT_ROOT or str((settings.DATA_DIR / "mlflow-artifacts").resolve())
        backend = urls.mlflow_backend_store_uri
        _exec(
            [
                _executable("mlflow"),
                "server",
                "--backend-store-uri",
                backend,
                "--artifacts-destination",
                artifacts,
                "--host",
                "0.0.0.0" if settings.ENVIRONMENT == "production" else "127.0.0.1",
                "--port",
                str(settings.MLFLOW_PORT),
                "--workers",
                "1",
            ],
            {},
        )
