"""Queries on `event`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from db.models import Event


class EventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create_many(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert events in one statement; returns their ids in order."""
        if not rows:
            return []
        result = self.session.execute(
            insert(Event).returning(Event.id, sort_by_parameter_order=True), list(rows)
        )
        return [int(event_id) for event_id in result.scalars()]
