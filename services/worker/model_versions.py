"""Queries on `model_version`: the registry's versions as the application sees them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ModelVersion


class ModelVersionRepository:
    """Reads and writes `model_version` rows inside the caller's transaction (never commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_champion(self, name: str, *, for_update: bool = False) -> ModelVersion | None:
        """The current champion of `name`, or None before the first promotion."""
        query = select(ModelVersion).where(ModelVersion.name == name, ModelVersion.status == "champion")
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def get_by_version(self, name: str, version: int) -> ModelVersion | None:
        """One registered version of `name`, or None."""
        query = select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
        return self.session.scalars(query).one_or_none()

    def get_by_run_id(self, run_id: str) -> ModelVersion | None:
        """The version registered from an MLflow run, or None."""
        query = select(ModelVersion).where(ModelVersion.mlflow_run_id == run_id)
        return self.session.scalars(query).one_or_none()

    def list_recent(self, name: str, limit: int = 20) -> list[ModelVersion]:
        """The latest versions of `name`, newest first."""
        query = (
            select(ModelVersion)
            .where(ModelVersion.name == name)
            .order_by(ModelVersion.version.desc())
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def create(
        self,
        *,
        name: str,
        version: int,
        mlflow_run_id: str,
        metrics: dict[str, Any],
        artifact_uri: str,
    ) -> ModelVersion:
        """Record a newly registered version as a candidate."""
        row = ModelVersion(
            name=name,
            version=version,
            mlflow_run_id=mlflow_run_id,
            status="candidate",
            metrics=metrics,
            artifact_uri=artifact_uri,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def promote(
        self, candidate: ModelVersion, *, at: datetime, reason: str | None = None
    ) -> ModelVersion | None:
        """Make `candidate` the champion and archive the previous one; returns the previous one."""
        previous = self.get_champion(candidate.name, for_update=True)
        if previous is not None and previous.id != candidate.id:
            previous.status = "archived"
            # The partial unique index allows one champion per name: archive before promoting.
            self.session.flush()
        candidate.status = "champion"
        candidate.promoted_at = at
        candidate.reason = reason
        self.session.flush()
        return previous if previous is not None and previous.id != candidate.id else None

    def reject(self, candidate: ModelVersion, *, reason: str) -> None:
        """Mark `candidate` rejected by the gate, with the reason."""
        candidate.status = "rejected"
        candidate.reason = reason
        self.session.flush()
