"""Request and response bodies of the user and rating endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import MAX_ID
from services.api.schemas import JSON_NUMBER, NO_NUL, JsonInt

Stars = Annotated[float, Field(ge=0.5, le=5, multiple_of=0.5, allow_inf_nan=False), JSON_NUMBER]


class UserCreate(BaseModel):
    """A new user; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="Your id for this user, unique; lets you find them again.",
        examples=["customer-8842"],
    )
    age: Annotated[int, Field(ge=0, le=150), JSON_NUMBER] | None = Field(
        default=None, description="Age in years.", examples=[34]
    )
    gender: str | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        pattern=NO_NUL,
        description="Gender, free text.",
        examples=["F"],
    )
    occupation: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NO_NUL,
        description="Occupation.",
        examples=["engineer"],
    )
    zip_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        pattern=NO_NUL,
        description="Postal code.",
        examples=["02139"],
    )


class UserRead(BaseModel):
    """A user."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="User id; use it in every other call.", examples=[944])
    external_id: str | None = Field(description="Your id for this user.", examples=["customer-8842"])
    age: int | None = Field(description="Age in years.", examples=[34])
    gender: str | None = Field(description="Gender.", examples=["F"])
    occupation: str | None = Field(description="Occupation.", examples=["engineer"])
    zip_code: str | None = Field(description="Postal code.", examples=["02139"])
    created_at: datetime = Field(description="When the user was created.", examples=["2026-11-21T09:00:00Z"])


class RatingCreate(BaseModel):
    """A user's rating of a movie; rating the same movie again replaces the rating."""

    model_config = ConfigDict(extra="forbid")

    user_id: JsonInt = Field(ge=1, le=MAX_ID, description="The user.", examples=[944])
    movie_id: JsonInt = Field(ge=1, le=MAX_ID, description="The movie.", examples=[1])
    rating: Stars = Field(description="Stars, 0.5 to 5 by halves.", examples=[4.5])


class RatingRead(BaseModel):
    """A stored rating."""

    model_config = ConfigDict(from_attributes=True)

    user_id: int = Field(description="The user.", examples=[944])
    movie_id: int = Field(description="The movie.", examples=[1])
    rating: float = Field(description="Stars, 0.5 to 5.", examples=[4.5])
    rated_at: datetime = Field(description="When it was (last) rated.", examples=["2026-11-21T09:05:00Z"])


class RatingPage(BaseModel):
    """A page of a user's ratings, newest first."""

    items: list[RatingRead] = Field(description="Ratings on this page.")
    total: int = Field(description="All the user's ratings.", examples=[57])
    page: int = Field(description="This page's number (from 1).", examples=[1])
    page_size: int = Field(description="Items per page.", examples=[20])
