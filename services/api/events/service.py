"""Events from client apps, tagged with the experiment and variant that served them.

The variant is not looked up: assignment is a pure function of the experiment's salt and the user,
so it is recomputed for the experiment that was running when the list was served. That moment is
read from the `request_id` (a UUIDv7 carries its creation time), else taken as `occurred_at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from services.api.events.repository import EventRepository
from services.api.events.schemas import EventCreate, EventRead
from services.api.experiments.service import experiment as experiment_service
from services.api.request_context import uuid7_time


class EventService:
    def record(self, session: Session, *, events: Sequence[EventCreate]) -> list[EventRead]:
        """Store events with their experiment and variant resolved."""
        now = datetime.now(UTC)
        moments = []
        for event in events:
            served_at = uuid7_time(event.request_id) if event.request_id is not None else None
            moments.append(served_at or event.occurred_at or now)
        resolved = experiment_service.resolve(session, moments, [event.user_id for event in events])
        rows = [
            {
                "event_type": event.type,
                "user_id": event.user_id,
                "movie_id": event.movie_id,
                "request_id": event.request_id,
                "position": event.position,
                "value": event.value,
                "occurred_at": event.occurred_at or now,
                "experiment_id": found[0] if found else None,
                "variant_id": found[1] if found else None,
            }
            for event, found in zip(events, resolved, strict=True)
        ]
        ids = EventRepository(session).create_many(rows)
        return [
            EventRead(id=event_id, experiment_id=row["experiment_id"], variant_id=row["variant_id"])
            for event_id, row in zip(ids, rows, strict=True)
        ]


event = EventService()
