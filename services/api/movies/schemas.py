"""Response bodies of the movie endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MovieRead(BaseModel):
    """A catalog movie."""

    id: int = Field(description="Movie id.", examples=[1])
    title: str = Field(description="Title as the catalog writes it.", examples=["Toy Story"])
    year: int | None = Field(description="Release year, null if unknown.", examples=[1995])
    genres: list[str] = Field(
        description="Genres, alphabetical.", examples=[["Animation", "Children's", "Comedy"]]
    )


class MovieDetail(MovieRead):
    """A catalog movie with the ids other catalogs know it by."""

    imdb_id: int | None = Field(description="IMDb id (the number of `tt0114709`).", examples=[114709])
    tmdb_id: int | None = Field(description="The Movie Database id.", examples=[862])


class MovieSearchHit(MovieRead):
    """A movie found by a search."""

    match_score: float | None = Field(
        description="How well the title matches `q` (0-100); null when no `q` was given.", examples=[95.2]
    )


class MoviePage(BaseModel):
    """A page of movies."""

    items: list[MovieSearchHit] = Field(description="Movies on this page.")
    total: int = Field(description="Movies matching the query, over all pages.", examples=[1682])
    page: int = Field(description="This page's number (from 1).", examples=[1])
    page_size: int = Field(description="Items per page.", examples=[20])
