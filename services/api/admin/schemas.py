"""Response bodies of the admin endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RetrainAccepted(BaseModel):
    """A retrain was queued."""

    task_id: str = Field(
        description="Celery task id; poll `status_url` for progress.",
        examples=["5d0f1c6e-8b2a-4f3e-9c1d-7a6b5e4d3c2b"],
    )
    task_name: str = Field(description="The task queued.", examples=["movierec.retrain"])
    status_url: str = Field(
        description="Where to follow the task.",
        examples=["/v1/admin/retrain/5d0f1c6e-8b2a-4f3e-9c1d-7a6b5e4d3c2b"],
    )


class TaskStatus(BaseModel):
    """Where a queued task is."""

    task_id: str = Field(description="Celery task id.", examples=["5d0f1c6e-8b2a-4f3e-9c1d-7a6b5e4d3c2b"])
    state: str = Field(
        description="`PENDING` (queued or unknown), `STARTED`, `SUCCESS`, `FAILURE`, `RETRY` or `REVOKED`.",
        examples=["STARTED"],
    )
    result: Any = Field(
        default=None,
        description="What the task returned, once it succeeded.",
        examples=[{"model_version": "hybrid-20261121T030000-1a2b3c4d", "promoted": True}],
    )


class ModelVersionRead(BaseModel):
    """A trained model and what the quality gate said."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Row id.", examples=[3])
    name: str = Field(description="Registered model name.", examples=["movierec"])
    version: int = Field(description="Registry version.", examples=[3])
    mlflow_run_id: str | None = Field(
        description="MLflow run.", examples=["9f8e7d6c5b4a39281706f5e4d3c2b1a0"]
    )
    status: str = Field(
        description="`candidate`, `champion`, `rejected` or `archived`.", examples=["champion"]
    )
    metrics: dict[str, Any] = Field(description="Holdout metrics.", examples=[{"hybrid.ndcg_at_10": 0.41}])
    artifact_uri: str | None = Field(description="Where the artifact is.", examples=["models:/movierec/3"])
    reason: str | None = Field(
        description="Why it was promoted or rejected.", examples=["beats the champion"]
    )
    created_at: datetime = Field(description="When it was registered.", examples=["2026-11-21T03:12:00Z"])
    promoted_at: datetime | None = Field(
        description="When it became champion.", examples=["2026-11-21T03:13:00Z"]
    )


class LivePointerRead(BaseModel):
    """The live-model pointer in Redis: what every API instance serves."""

    version: str = Field(description="Model version.", examples=["hybrid-20261121T030000-1a2b3c4d"])
    artifact_dir: str = Field(
        description="Folder of its serving artifact.",
        examples=[".data/models/hybrid-20261121T030000-1a2b3c4d"],
    )
    mlflow_run_id: str | None = Field(
        description="MLflow run.", examples=["9f8e7d6c5b4a39281706f5e4d3c2b1a0"]
    )
    registry_version: int | None = Field(description="Registry version.", examples=[3])
    promoted_at: str | None = Field(
        description="When it was promoted.", examples=["2026-11-21T03:13:00+00:00"]
    )


class ModelsRead(BaseModel):
    """Trained models, the champion, and what is served."""

    live: LivePointerRead | None = Field(
        description="The live pointer; null before the first promotion or while Redis is unreachable."
    )
    served_version: str | None = Field(
        description="The version this API instance serves right now.",
        examples=["hybrid-20261121T030000-1a2b3c4d"],
    )
    loaded_versions: list[str] = Field(
        description="Versions in this instance's memory (live first).",
        examples=[["hybrid-20261121T030000-1a2b3c4d"]],
    )
    champion: ModelVersionRead | None = Field(description="The model that passed the gate last.")
    versions: list[ModelVersionRead] = Field(description="The 100 newest trained models, newest first.")
