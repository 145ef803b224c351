"""The catalog: search and look up movies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from db.models import Movie
from services.api.deps import MovieId, ReadKey, SessionDep, StateDep
from services.api.errors import problem_responses
from services.api.movies.schemas import MovieDetail, MoviePage, MovieSearchHit
from services.api.movies.service import movie as movie_service
from services.api.routing import StrictQueryRoute
from services.api.schemas import NO_NUL

router = APIRouter(prefix="/movies", tags=["movies"], route_class=StrictQueryRoute)


def get_movie(movie_id: MovieId, session: SessionDep) -> Movie:
    """The movie of the path, or 404."""
    return movie_service.get(session, movie_id)


MovieDep = Annotated[Movie, Depends(get_movie)]


def _genres(movie: Movie) -> list[str]:
    return [genre.name for genre in movie.genres]


@router.get("", response_model=MoviePage, responses=problem_responses(401, 403, 422, 429, 503))
def list_movies(
    _: ReadKey,
    session: SessionDep,
    state: StateDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=NO_NUL,
            description="Fuzzy title search: typos, case, accents, articles and a trailing year are fine.",
            examples=["shawshank"],
        ),
    ] = None,
    genre: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=50,
            pattern=NO_NUL,
            description="Only this genre (any case).",
            examples=["Drama"],
        ),
    ] = None,
    year: Annotated[
        int | None, Query(ge=1870, le=2100, description="Only this release year.", examples=[1994])
    ] = None,
    page: Annotated[int, Query(ge=1, le=10_000, description="Page number, from 1.", examples=[1])] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=100, description="Movies per page (1-100).", examples=[20])
    ] = 20,
) -> MoviePage:
    """Movies by id, or the best title matches of `q` first; filtered by genre and year, paginated."""
    hits, total = movie_service.search(
        session, titles=state.titles, q=q, genre=genre, year=year, page=page, page_size=page_size
    )
    items = [
        MovieSearchHit(
            id=hit.movie.id,
            title=hit.movie.title,
            year=hit.movie.year,
            genres=_genres(hit.movie),
            match_score=hit.match_score,
        )
        for hit in hits
    ]
    return MoviePage(items=items, total=total, page=page, page_size=page_size)


@router.get(
    "/{movie_id}", response_model=MovieDetail, responses=problem_responses(401, 403, 404, 422, 429, 503)
)
def get_movie_by_id(_: ReadKey, movie: MovieDep) -> MovieDetail:
    """One movie."""
    return MovieDetail(
        id=movie.id,
        title=movie.title,
        year=movie.year,
        genres=_genres(movie),
        imdb_id=movie.imdb_id,
        tmdb_id=movie.tmdb_id,
    )
