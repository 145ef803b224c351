"""Request and response bodies of the recommendation endpoints."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.api.deps import MAX_ID
from services.api.experiments.schemas import ExperimentRef, VariantRef
from services.api.movies.schemas import MovieRead
from services.api.schemas import JSON_NUMBER, JsonBool, JsonInt

MAX_BATCH_USERS = 100
MAX_LIKED_TITLES = 20

UserIdField = Annotated[int, Field(ge=1, le=MAX_ID), JSON_NUMBER]
Genre = Annotated[str, Field(min_length=1, max_length=50)]


class RecommendedMovie(MovieRead):
    """A recommended movie."""

    score: float = Field(
        description="Ranking score; higher is better, comparable within one list only.", examples=[0.87]
    )
    explanation: str = Field(
        description="Why it is recommended, in a few words.", examples=["because you rated Heat 5 stars"]
    )


class RecommendationsRead(BaseModel):
    """A user's recommendations and how they were made."""

    user_id: int = Field(description="The user.", examples=[42])
    request_id: UUID = Field(
        description="Id of this list (a UUIDv7); send it with the events it leads to.",
        examples=["01932c4e-7a9b-7c3d-8e5f-0123456789ab"],
    )
    model_version: str = Field(
        description="Model version that ranked the list.", examples=["hybrid-20261121T030000-1a2b3c4d"]
    )
    strategy: str = Field(
        description="Ranking strategy (`hybrid`, `svd`, ... or `weights:...`).", examples=["hybrid"]
    )
    experiment: ExperimentRef | None = Field(description="The A/B experiment the user is in; null if none.")
    variant: VariantRef | None = Field(description="The user's variant in it; null if none.")
    cold_start: bool = Field(
        description="The user was not in the model's training data: the list comes from ratings given "
        "since (folded in) or, with none, from popular movies.",
        examples=[False],
    )
    source: Literal["cache", "model"] = Field(
        description="`cache`: a stored list; `model`: computed for this request.", examples=["cache"]
    )
    items: list[RecommendedMovie] = Field(description="Recommended movies, best first.")


class BatchRecommendationsRequest(BaseModel):
    """Recommendations for several users at once."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[UserIdField] = Field(
        min_length=1,
        max_length=MAX_BATCH_USERS,
        description=f"Users (1 to {MAX_BATCH_USERS}, duplicates ignored).",
        examples=[[1, 2, 3]],
    )
    k: JsonInt = Field(default=10, ge=1, le=100, description="Movies per user (1-100).", examples=[10])
    genre: Genre | None = Field(default=None, description="Only movies of this genre.", examples=["Comedy"])
    exclude_seen: JsonBool = Field(
        default=True, description="Leave out movies the user rated.", examples=[True]
    )


class BatchRecommendationsRead(BaseModel):
    """Each user's recommendations, in the order asked."""

    results: list[RecommendationsRead] = Field(description="One list per distinct user.")


class FromTitlesRequest(BaseModel):
    """Movies someone likes, typed as free text."""

    model_config = ConfigDict(extra="forbid")

    liked: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1,
        max_length=MAX_LIKED_TITLES,
        description=f"Titles as typed (1 to {MAX_LIKED_TITLES}); typos, case, articles and a year are fine.",
        examples=[["toy story", "star wars"]],
    )
    k: JsonInt = Field(
        default=10, ge=1, le=100, description="How many recommendations (1-100).", examples=[10]
    )


class TitleMatchRead(BaseModel):
    """The movie a typed title matched."""

    query: str = Field(description="The title as typed.", examples=["toy story"])
    movie: MovieRead | None = Field(description="The best matching movie; null if none matched.")
    match_score: float | None = Field(description="Similarity of the match (0-100).", examples=[100.0])


class FromTitlesRead(BaseModel):
    """Matched titles and recommendations for someone who likes them."""

    request_id: UUID = Field(
        description="Id of this list (a UUIDv7).", examples=["01932c4e-7a9b-7c3d-8e5f-0123456789ab"]
    )
    model_version: str = Field(
        description="Model version that ranked the list.", examples=["hybrid-20261121T030000-1a2b3c4d"]
    )
    matches: list[TitleMatchRead] = Field(description="One entry per typed title, in order.")
    items: list[RecommendedMovie] = Field(description="Recommended movies, best first (liked ones left out).")


class SimilarMoviesRead(BaseModel):
    """Movies similar to one movie."""

    movie: MovieRead = Field(description="The movie asked about.")
    model_version: str = Field(
        description="Model version used.", examples=["hybrid-20261121T030000-1a2b3c4d"]
    )
    items: list[RecommendedMovie] = Field(description="Similar movies, most similar first.")


class PredictedRatingRead(BaseModel):
    """The rating a user would probably give a movie."""

    user_id: int = Field(description="The user.", examples=[42])
    movie_id: int = Field(description="The movie.", examples=[1])
    predicted_rating: float | None = Field(
        description="Predicted stars (0.5-5); null if it cannot be predicted.", examples=[4.1]
    )
    reason: str | None = Field(description="Why there is no prediction, when there is none.", examples=[None])
    current_rating: float | None = Field(
        description="The user's actual rating of the movie, if any.", examples=[None]
    )
    model_version: str = Field(
        description="Model version used.", examples=["hybrid-20261121T030000-1a2b3c4d"]
    )
