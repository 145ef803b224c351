"""Queries on `model_version`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ModelVersion


class ModelVersionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def list_recent(self, *, limit: int = 100) -> Sequence[ModelVersion]:
        query = (
            select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc()).limit(limit)
        )
        return self.session.scalars(query).all()

    def get_champion(self) -> ModelVersion | None:
        query = select(ModelVersion).where(ModelVersion.status == "champion").order_by(ModelVersion.id.desc())
        return self.session.scalars(query.limit(1)).first()
