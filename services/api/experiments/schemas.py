"""Request and response bodies of the experiments endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api.schemas import JSON_NUMBER, NO_NUL, JsonBool, JsonInt

StrategyName = Literal["hybrid", "ease", "als", "knn", "svd", "content", "popularity"]
ComponentName = Literal["ease", "als", "knn", "svd", "content", "popularity"]
ExperimentStatus = Literal["draft", "running", "stopped"]

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class VariantConfig(BaseModel):
    """What a variant serves: a ranking strategy (or blend weights) of a model version."""

    model_config = ConfigDict(extra="forbid")

    strategy: StrategyName | None = Field(
        default=None,
        description="Ranking strategy: `hybrid` (the default), or one component alone (`svd` is the "
        "usual control). Leave out when `weights` is given.",
        examples=["svd"],
    )
    weights: dict[ComponentName, Annotated[float, Field(ge=0, le=100), JSON_NUMBER]] | None = Field(
        default=None,
        description="Blend weights over component scores instead of a named strategy.",
        examples=[{"ease": 0.6, "svd": 0.4}],
    )
    model_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=VERSION,
        description="Model version to serve; absent, `live` or `champion`: whatever the live-model pointer "
        "names (the worker points it at the champion).",
        examples=["live"],
    )

    @model_validator(mode="after")
    def _strategy_or_weights(self) -> Self:
        if self.strategy is not None and self.weights is not None:
            raise ValueError("give either a strategy or weights, not both")
        if self.weights is not None and not any(weight > 0 for weight in self.weights.values()):
            raise ValueError("at least one weight must be positive")
        return self


class VariantCreate(BaseModel):
    """One arm of a new experiment."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=50,
        pattern=SLUG,
        description="Name, unique in the experiment.",
        examples=["treatment"],
    )
    weight: JsonInt = Field(
        ge=0, le=100, description="Share of users, in percent; all weights sum to 100.", examples=[50]
    )
    is_control: JsonBool = Field(
        default=False, description="Whether this is the control arm.", examples=[False]
    )
    config: VariantConfig = Field(
        default_factory=VariantConfig,
        description="What this variant serves.",
        examples=[{"strategy": "hybrid"}],
    )


class ExperimentCreate(BaseModel):
    """A new A/B experiment (created as a draft)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=SLUG,
        description="Unique name: lower-case letters, digits, `-` and `_`.",
        examples=["hybrid-vs-svd"],
    )
    description: str = Field(
        default="",
        max_length=2000,
        pattern=NO_NUL,
        description="What is tested and why.",
        examples=["Does the hybrid beat plain SVD on click-through?"],
    )
    salt: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Hash salt; experiments with different salts split users independently. "
        "Absent: a random one. Reuse an old salt to reproduce its split.",
        examples=["3f9a1c2b7d4e5f60"],
    )
    variants: list[VariantCreate] = Field(
        min_length=2,
        max_length=10,
        description="Two to ten variants whose weights sum to 100.",
        examples=[
            [
                {"name": "control", "weight": 50, "is_control": True, "config": {"strategy": "svd"}},
                {"name": "treatment", "weight": 50, "config": {"strategy": "hybrid"}},
            ]
        ],
    )

    @model_validator(mode="after")
    def _weights_and_names(self) -> Self:
        total = sum(variant.weight for variant in self.variants)
        if total != 100:
            raise ValueError(f"variant weights must sum to 100, not {total}")
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if sum(variant.is_control for variant in self.variants) > 1:
            raise ValueError("at most one variant can be the control")
        return self


class VariantRead(BaseModel):
    """One arm of an experiment."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Variant id.", examples=[1])
    name: str = Field(description="Variant name.", examples=["control"])
    weight: JsonInt = Field(description="Share of users, in percent.", examples=[50])
    is_control: bool = Field(description="Whether this is the control arm.", examples=[True])
    config: VariantConfig = Field(description="What the variant serves.", examples=[{"strategy": "svd"}])


class ExperimentRead(BaseModel):
    """An A/B experiment."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Experiment id.", examples=[1])
    name: str = Field(description="Unique name.", examples=["hybrid-vs-svd"])
    description: str = Field(description="What is tested.", examples=["Hybrid against plain SVD."])
    salt: str = Field(description="Hash salt of the user split.", examples=["3f9a1c2b7d4e5f60"])
    status: ExperimentStatus = Field(description="`draft`, `running` or `stopped`.", examples=["running"])
    created_at: datetime = Field(description="When it was created.", examples=["2026-11-21T09:00:00Z"])
    started_at: datetime | None = Field(description="When it was started.", examples=["2026-11-21T10:00:00Z"])
    stopped_at: datetime | None = Field(description="When it was stopped.", examples=[None])
    variants: list[VariantRead] = Field(description="Its variants.")


class ExperimentPage(BaseModel):
    """A page of experiments, newest first."""

    items: list[ExperimentRead] = Field(description="Experiments on this page.")
    total: int = Field(description="Experiments matching the filter.", examples=[3])
    page: int = Field(description="This page's number (from 1).", examples=[1])
    page_size: int = Field(description="Items per page.", examples=[20])


class ExperimentRef(BaseModel):
    """An experiment, by id and name."""

    id: int = Field(description="Experiment id.", examples=[1])
    name: str = Field(description="Experiment name.", examples=["hybrid-vs-svd"])


class VariantRef(BaseModel):
    """A variant, by id and name."""

    id: int = Field(description="Variant id.", examples=[2])
    name: str = Field(description="Variant name.", examples=["treatment"])


class AssignmentRead(BaseModel):
    """The variant of the running experiment a user is assigned to, if any."""

    user_id: int = Field(description="The user.", examples=[42])
    experiment: ExperimentRef | None = Field(description="The running experiment; null if none.")
    variant: VariantRef | None = Field(description="The user's variant; null if no experiment runs.")
    bucket: int | None = Field(
        description="The user's bucket (0-9999) in the experiment; buckets map to variants by weight.",
        examples=[4711],
    )
    config: VariantConfig | None = Field(
        description="What the variant serves.", examples=[{"strategy": "hybrid"}]
    )
