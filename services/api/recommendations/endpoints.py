"""Recommendations: per user, per batch of users, from liked titles; similar movies; predicted ratings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.api.deps import (
    K,
    MovieId,
    ReadKey,
    ReadKeyCountedLater,
    StateDep,
    UserId,
    app_state,
    counted_later,
)
from services.api.errors import problem_responses
from services.api.movies.schemas import MovieRead
from services.api.recommendations.engine import MovieFacts, Scored
from services.api.recommendations.schemas import (
    BatchRecommendationsRead,
    BatchRecommendationsRequest,
    FromTitlesRead,
    FromTitlesRequest,
    PredictedRatingRead,
    RecommendationsRead,
    RecommendedMovie,
    SimilarMoviesRead,
    TitleMatchRead,
)
from services.api.recommendations.service import computed
from services.api.recommendations.service import recommendation as recommendation_service
from services.api.recommendations.user_list import (
    DEFAULT_K,
    MAX_GENRE_LENGTH,
    UserListQuery,
    json_response,
    list_json,
    serve_user_list,
)
from services.api.routing import StrictQueryRoute

router = APIRouter(tags=["recommendations"], route_class=StrictQueryRoute)

GenreQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_GENRE_LENGTH,
        description="Only movies of this genre (any case).",
        examples=["Comedy"],
    ),
]
ExcludeSeenQuery = Annotated[bool, Query(description="Leave out movies the user has rated.", examples=[True])]


def _movie(facts: MovieFacts) -> MovieRead:
    return MovieRead(id=facts.movie_id, title=facts.title, year=facts.year, genres=list(facts.genres))


def _recommended(items: list[tuple[MovieFacts, Scored]]) -> list[RecommendedMovie]:
    return [
        RecommendedMovie(
            id=facts.movie_id,
            title=facts.title,
            year=facts.year,
            genres=list(facts.genres),
            score=scored.score,
            explanation=scored.explanation,
        )
        for facts, scored in items
    ]


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationsRead,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def get_user_recommendations(
    request: Request,
    user_id: UserId,
    principal: ReadKeyCountedLater,
    k: K = DEFAULT_K,
    genre: GenreQuery = None,
    exclude_seen: ExcludeSeenQuery = True,
) -> Response:
    """A user's top-k movies: cached when possible, with the user's A/B variant applied.

    A user the model does not know (or that does not exist yet) gets a cold-start list, flagged.
    An unknown `genre` is a 404 whose detail lists the catalog's genres.
    """
    return await serve_user_list(request, principal, UserListQuery(user_id, k, genre, exclude_seen))


@router.post(
    "/recommendations/batch",
    response_model=BatchRecommendationsRead,
    responses=problem_responses(401, 403, 404, 413, 422, 429, 503),
)
async def post_batch_recommendations(
    request: Request, body: BatchRecommendationsRequest, principal: ReadKeyCountedLater
) -> Response:
    """Recommendations for up to 100 users in one call (one cache round trip, one database query)."""
    served = await recommendation_service.arecommend(
        app_state(request),
        user_ids=body.user_ids,
        k=body.k,
        genre=body.genre,
        exclude_seen=body.exclude_seen,
        count=counted_later(request, principal),
    )
    request_id = request.state.request_id
    return json_response({"results": [list_json(item, request_id) for item in served]})


@router.post(
    "/recommendations/from-titles",
    response_model=FromTitlesRead,
    responses=problem_responses(401, 403, 413, 422, 429, 503),
)
async def post_recommendations_from_titles(
    request: Request, body: FromTitlesRequest, state: StateDep, _: ReadKey
) -> FromTitlesRead:
    """Recommendations for someone who typed a few movies they like (no account needed).

    Each title is fuzzy-matched to the catalog (typos, case and articles do not matter); titles that
    match nothing are returned with a null movie.
    """
    model, matches, items = await computed(
        state, lambda: recommendation_service.from_titles(state, liked=body.liked, k=body.k)
    )
    return FromTitlesRead(
        request_id=request.state.request_id,
        model_version=model.version,
        matches=[
            TitleMatchRead(query=match.query, movie=_movie(facts) if facts else None, match_score=match.score)
            for match, facts in matches
        ],
        items=_recommended(items),
    )


@router.get(
    "/movies/{movie_id}/similar",
    response_model=SimilarMoviesRead,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def get_similar_movies(movie_id: MovieId, state: StateDep, _: ReadKey, k: K = 10) -> SimilarMoviesRead:
    """Movies like this one, by content (genres, people, title) and by who liked them."""
    facts, model, items = await computed(
        state, lambda: recommendation_service.similar(state, movie_id=movie_id, k=k)
    )
    return SimilarMoviesRead(movie=_movie(facts), model_version=model.version, items=_recommended(items))


@router.get(
    "/users/{user_id}/movies/{movie_id}/predicted-rating",
    response_model=PredictedRatingRead,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def get_predicted_rating(
    user_id: UserId, movie_id: MovieId, state: StateDep, _: ReadKey
) -> PredictedRatingRead:
    """The stars the user would probably give the movie, from their current ratings."""
    model, prediction, current = await computed(
        state, lambda: recommendation_service.predict_rating(state, user_id=user_id, movie_id=movie_id)
    )
    return PredictedRatingRead(
        user_id=user_id,
        movie_id=movie_id,
        predicted_rating=None if prediction.value is None else round(prediction.value, 3),
        reason=prediction.reason,
        current_rating=current,
        model_version=model.version,
    )
