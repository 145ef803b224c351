"""Request and response bodies of the API key endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.schemas import NOT_BLANK_NO_NUL

Scope = Literal["read", "write", "admin"]


class ApiKeyCreate(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NOT_BLANK_NO_NUL,
        description="Who or what uses the key.",
        examples=["android-app"],
    )
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=3,
        description="`read`, `write` and/or `admin` (admin implies the others).",
        examples=[["read", "write"]],
    )

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        self.scopes = list(dict.fromkeys(self.scopes))
        return self


class ApiKeyRead(BaseModel):
    """An API key (never its secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Key id.", examples=[2])
    name: str = Field(description="Who or what uses the key.", examples=["android-app"])
    prefix: str = Field(description="The key's first characters, to recognise it.", examples=["mr_Xk3v9QbT"])
    scopes: list[Scope] = Field(description="What the key may do.", examples=[["read", "write"]])
    created_at: datetime = Field(description="When it was created.", examples=["2026-11-21T09:00:00Z"])
    last_used_at: datetime | None = Field(
        description="When it was last used (to the minute).", examples=["2026-11-21T10:00:00Z"]
    )
    revoked_at: datetime | None = Field(description="When it was revoked; null while valid.", examples=[None])


class ApiKeyCreated(ApiKeyRead):
    """A new API key, with its secret: shown this once, stored nowhere."""

    key: str = Field(
        description="The secret to send as `X-API-Key`.",
        examples=["mr_Xk3v9QbT2lq0V8yJcH1nR5sA7dF4gK6mP9wE3uZ0xYo"],
    )
