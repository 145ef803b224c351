"""Queries on `movie` and its genres."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from db.models import Genre, Movie, MovieGenre


class MovieRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_id(self, movie_id: int) -> Movie | None:
        return self.session.get(Movie, movie_id)

    def exists(self, movie_id: int) -> bool:
        return self.session.scalar(select(func.count()).where(Movie.id == movie_id)) == 1

    @staticmethod
    def _filtered(query: Select[Movie], *, genre: str | None, year: int | None) -> Select[Movie]:
        if genre is not None:
            query = query.where(
                Movie.id.in_(
                    select(MovieGenre.movie_id)
                    .join(Genre, Genre.id == MovieGenre.genre_id)
                    .where(func.lower(Genre.name) == genre.lower())
                )
            )
        if year is not None:
            query = query.where(Movie.year == year)
        return query

    def list_movies(
        self, *, genre: str | None, year: int | None, offset: int, limit: int
    ) -> tuple[Sequence[Movie], int]:
        """A page of movies by id, and how many match."""
        query = self._filtered(select(Movie), genre=genre, year=year)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        items = self.session.scalars(query.order_by(Movie.id).offset(offset).limit(limit)).all()
        return items, int(total)

    def list_by_ids(
        self, movie_ids: Sequence[int], *, genre: str | None = None, year: int | None = None
    ) -> dict[int, Movie]:
        """The movies among `movie_ids` that match the filters, by id."""
        if not movie_ids:
            return {}
        query = self._filtered(select(Movie).where(Movie.id.in_(list(movie_ids))), genre=genre, year=year)
        return {movie.id: movie for movie in self.session.scalars(query)}

    def list_titles(self) -> Sequence[tuple[int, str, int | None]]:
        """Every movie's id, title and year (for the fuzzy title index)."""
        rows = self.session.execute(select(Movie.id, Movie.title, Movie.year).order_by(Movie.id))
        return [(int(movie_id), str(title), year) for movie_id, title, year in rows]

    def catalog_signature(self) -> tuple[int, int]:
        """(count, max id): changes when movies are added or removed."""
        count, highest = self.session.execute(
            select(func.count(), func.coalesce(func.max(Movie.id), 0))
        ).one()
        return int(count), int(highest)
