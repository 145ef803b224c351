"""The catalog: movies by id, filtered lists, and fuzzy title search over the database's titles."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from db.models import Movie
from ml.titles import TitleIndex
from services.api.errors import NotFound
from services.api.movies.repository import MovieRepository

# The index is rebuilt when the catalog's (count, max id) changes, checked at most this often.
CATALOG_CHECK_SECONDS = 30.0
# Fuzzy search considers at most this many matches (best first) before filters and paging.
MAX_SEARCH_MATCHES = 1000


class MovieNotFound(NotFound):
    title = "Movie not found"

    def __init__(self, movie_id: int) -> None:
        super().__init__(f"No movie with id {movie_id}.")


@dataclass(frozen=True, slots=True)
class SearchHit:
    movie: Movie
    match_score: float | None


class TitleSearch:
    """A fuzzy index of the database's titles, built on first use and when the catalog changes."""

    def __init__(self) -> None:
        self._index: TitleIndex | None = None
        self._signature: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    def index(self, session: Session) -> TitleIndex:
        now = time.monotonic()
        if self._index is not None and now - self._checked_at < CATALOG_CHECK_SECONDS:
            return self._index
        with self._lock:
            repository = MovieRepository(session)
            signature = repository.catalog_signature()
            if self._index is None or signature != self._signature:
                rows = repository.list_titles()
                self._index = TitleIndex([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
                self._signature = signature
            self._checked_at = now
            return self._index


class MovieService:
    def get(self, session: Session, movie_id: int) -> Movie:
        """The movie, or MovieNotFound."""
        movie = MovieRepository(session).get_by_id(movie_id)
        if movie is None:
            raise MovieNotFound(movie_id)
        return movie

    def search(
        self,
        session: Session,
        *,
        titles: TitleSearch,
        q: str | None,
        genre: str | None,
        year: int | None,
        page: int,
        page_size: int,
    ) -> tuple[Sequence[SearchHit], int]:
        """A page of movies matching the filters (by fuzzy title match when `q` is given), and the total."""
        repository = MovieRepository(session)
        offset = (page - 1) * page_size
        if q is None:
            movies, total = repository.list_movies(genre=genre, year=year, offset=offset, limit=page_size)
            return [SearchHit(movie, None) for movie in movies], total
        matches = titles.index(session).match(q, limit=MAX_SEARCH_MATCHES)
        found = repository.list_by_ids([m.movie_id for m in matches], genre=genre, year=year)
        hits = [SearchHit(found[m.movie_id], round(m.score, 1)) for m in matches if m.movie_id in found]
        return hits[offset : offset + page_size], len(hits)


movie = MovieService()
