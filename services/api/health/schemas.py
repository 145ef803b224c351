"""Response bodies of the health endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CheckStatus = Literal["ok", "unavailable"]


class Liveness(BaseModel):
    """The process is up."""

    status: Literal["ok"] = Field(description="Always `ok` when the process answers.", examples=["ok"])


class Checks(BaseModel):
    """What each dependency said."""

    database: CheckStatus = Field(description="PostgreSQL answers `SELECT 1`.", examples=["ok"])
    redis: CheckStatus = Field(description="Redis answers `PING`.", examples=["ok"])
    model: CheckStatus = Field(description="A serving model is loaded.", examples=["ok"])


class Readiness(BaseModel):
    """Whether the API can serve, and how well."""

    status: Literal["ok", "degraded"] = Field(
        description="`ok`, or `degraded` when one of database and Redis is down but recommendations are "
        "still served (without cache and rate limits, or from cache and the trained model only).",
        examples=["ok"],
    )
    checks: Checks = Field(description="Each dependency.")
    model_version: str | None = Field(
        description="The model served.", examples=["hybrid-20261121T030000-1a2b3c4d"]
    )
    detail: str | None = Field(description="What is degraded, when something is.", examples=[None])
