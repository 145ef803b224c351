"""MLflow: one run per retrain, the registered model `movierec`, its `champion` alias.

The tracking URI is an MLflow server (`http://...`, what `make run` starts) or, as in tests, a
database URI used directly as the backend store; artifacts then go to `MLFLOW_ARTIFACT_ROOT`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from services.worker.gate import GateDecision

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
REPO_ROOT = Path(__file__).resolve().parents[2]

# MLflow draws download progress bars on stderr; worker logs are no place for them.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@lru_cache
def package_version() -> str:
    """The installed movierec version."""
    try:
        return version("movierec")
    except PackageNotFoundError:
        return "0+unknown"


@lru_cache
def code_version() -> str:
    """`git describe` of the checkout when there is one, else the package version."""
    if (REPO_ROOT / ".git").exists() and shutil.which("git"):
        try:
            described = subprocess.run(
                ["git", "describe", "--always", "--dirty", "--tags"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            if described:
                return described
        except (subprocess.SubprocessError, OSError):
            pass
    return package_version()


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


class Tracker:
    """Runs, artifacts and the model registry of one tracking server."""

    def __init__(self, tracking_uri: str, *, experiment: str, model_name: str, artifact_root: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.model_name = model_name
        self.artifact_root = artifact_root
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._experiment_id: str | None = None

    def experiment_id(self) -> str:
        """The id of the experiment, created on first use."""
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                # A server keeps artifacts where it was told to; a bare database store needs a place.
                location = None if _is_server(self.tracking_uri) else _as_uri(self.artifact_root)
                try:
                    self._experiment_id = self.client.create_experiment(
                        self.experiment, artifact_location=location
                    )
                except MlflowException:  # created by another process in the meantime
                    found = self.client.get_experiment_by_name(self.experiment)
                    if found is None:
                        raise
                    self._experiment_id = found.experiment_id
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id

    @contextmanager
    def run(self, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
        """An active run; it ends FINISHED if the block returns, FAILED if it raises."""
        with mlflow.start_run(experiment_id=self.experiment_id(), run_name=run_name, tags=dict(tags)) as run:
            yield run.info.run_id

    def end_abandoned_runs(self) -> list[str]:
        """Mark runs still RUNNING as KILLED: their worker died (call only while holding the lock)."""
        runs = self.client.search_runs(
            experiment_ids=[self.experiment_id()],
            filter_string="attributes.status = 'RUNNING'",
            max_results=100,
        )
        for run in runs:
            self.client.set_terminated(run.info.run_id, status="KILLED")
        return [run.info.run_id for run in runs]

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params (values as strings, MLflow's 6000-character limit respected)."""
        items = {key: str(value)[:6000] for key, value in params.items()}
        keys = sorted(items)
        for start in range(0, len(keys), 100):  # MLflow takes at most 100 params per batch
            batch = keys[start : start + 100]
            self.client.log_batch(
                run_id, params=[mlflow.entities.Param(key, items[key]) for key in batch], synchronous=True
            )

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        """Log finite metrics (MLflow rejects nothing, but NaN charts help nobody)."""
        finite = {key: float(value) for key, value in metrics.items() if value == value}
        keys = sorted(finite)
        for start in range(0, len(keys), 1000):
            self.client.log_batch(
                run_id,
                metrics=[
                    mlflow.entities.Metric(key, finite[key], _now_ms(), 0)
                    for key in keys[start : start + 1000]
                ],
                synchronous=True,
            )

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set run tags."""
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def log_json(self, run_id: str, payload: Any, artifact_file: str) -> None:
        """Log a JSON document as a run artifact."""
        self.client.log_text(
            run_id, json.dumps(payload, indent=2, sort_keys=True, default=str), artifact_file
        )

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Log a matplotlib figure as a run artifact."""
        self.client.log_figure(run_id, figure, artifact_file)

    def register(self, run_id: str, artifact_dir: Path, tags: Mapping[str, str]) -> int:
        """Log the artifact as a pyfunc model of the active run and register it as a new version.

        Returns:
            The registry version number.
        """
        active = mlflow.active_run()
        if active is None or active.info.run_id != run_id:
            raise RuntimeError(f"register() needs run {run_id} to be the active run")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"serving": str(artifact_dir)},
            pip_requirements=[f"movierec=={package_version()}"],
            registered_model_name=self.model_name,
            tags=dict(tags),
        )
        registered = info.registered_model_version
        if registered is None:
            raise RuntimeError(f"MLflow did not register {info.model_uri} as {self.model_name}")
        number = int(registered)
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(number), key, value)
        return number

    def tag_version(self, number: int, tags: Mapping[str, str]) -> None:
        """Set tags on a registered version."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, str(number), key, value)

    def set_champion(self, number: int) -> None:
        """Point the `champion` alias at a registered version."""
        self.client.set_registered_model_alias(self.model_name, CHAMPION_ALIAS, str(number))

    def champion_version(self) -> int | None:
        """The registry version the `champion` alias points at, or None."""
        try:
            found = self.client.get_model_version_by_alias(self.model_name, CHAMPION_ALIAS)
        except MlflowException:
            return None
        return int(found.version)

    def download_serving_artifact(self, number: int, destination: Path) -> Path:
        """Copy a registered version's serving artifact to `destination` (the durable copy)."""
        with tempfile.TemporaryDirectory(dir=destination.parent) as scratch:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{self.model_name}/{number}", dst_path=scratch
            )
            # The serving artifact is the outermost folder holding a metadata.json (its holdout
            # model is a sub-folder of it).
            candidates = sorted(Path(local).rglob("metadata.json"), key=lambda path: len(path.parts))
            if not candidates:
                raise FileNotFoundError(f"no serving artifact in {self.model_name} v{number}")
            shutil.copytree(candidates[0].parent, destination, dirs_exist_ok=True)
        return destination


def gate_tags(decision: GateDecision) -> dict[str, str]:
    """MLflow tags that record a gate decision."""
    return {"gate": decision.status, "gate_reason": decision.reason[:5000]}


def _as_uri(path_or_uri: str) -> str:
    if "://" in path_or_uri:
        return path_or_uri
    return Path(path_or_uri).resolve().as_uri()


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
