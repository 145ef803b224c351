"""Request and response bodies of the events endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from services.api.deps import MAX_ID
from services.api.schemas import JSON_NUMBER, JsonInt

MAX_EVENTS_PER_REQUEST = 1000
# Clocks of client devices run a little fast; events further in the future are refused.
CLOCK_SKEW = timedelta(minutes=5)

EventType = Literal["impression", "click", "view", "rating"]


class EventCreate(BaseModel):
    """Something a user did with a recommendation."""

    model_config = ConfigDict(extra="forbid")

    type: EventType = Field(
        description="`impression` (shown), `click`, `view` (watched) or `rating`.", examples=["click"]
    )
    user_id: JsonInt = Field(ge=1, le=MAX_ID, description="The user.", examples=[42])
    movie_id: Annotated[int, Field(ge=1, le=MAX_ID), JSON_NUMBER] | None = Field(
        default=None, description="The movie, if any.", examples=[1]
    )
    request_id: UUID | None = Field(
        default=None,
        description="`request_id` of the recommendation list the event came from; the experiment and "
        "variant are resolved from it.",
        examples=["01932c4e-7a9b-7c3d-8e5f-0123456789ab"],
    )
    position: Annotated[int, Field(ge=0, le=10_000), JSON_NUMBER] | None = Field(
        default=None, description="0-based position in the list.", examples=[0]
    )
    value: Annotated[float, Field(ge=-1e9, le=1e9, allow_inf_nan=False), JSON_NUMBER] | None = Field(
        default=None,
        description="A number that goes with the event: stars for `rating`, seconds watched for `view`.",
        examples=[4.5],
    )
    occurred_at: AwareDatetime | None = Field(
        default=None,
        description="When it happened (with a time zone); absent: when it was received.",
        examples=["2026-11-21T09:05:00Z"],
    )

    @field_validator("occurred_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        # A device whose clock runs ahead would put events in the future; they happened on receipt.
        now = datetime.now(UTC)
        if value is not None and value > now + CLOCK_SKEW:
            return now
        return value


class EventRead(BaseModel):
    """A stored event."""

    id: int = Field(description="Event id.", examples=[1001])
    experiment_id: int | None = Field(
        description="The experiment the user was in when the list was served.", examples=[1]
    )
    variant_id: int | None = Field(description="The user's variant in it.", examples=[2])


class EventsAccepted(BaseModel):
    """The events stored, in the order sent."""

    accepted: int = Field(description="How many events were stored.", examples=[1])
    events: list[EventRead] = Field(description="Each stored event.")
