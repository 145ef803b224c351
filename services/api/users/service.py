"""Users and their ratings; a new rating drops the user's cached lists once it is committed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.models import AppUser, Rating
from services.api.errors import Conflict, NotFound
from services.api.movies.repository import MovieRepository
from services.api.movies.service import MovieNotFound
from services.api.recommendations.service import recommendation as recommendation_service
from services.api.state import AppState
from services.api.transaction import after_commit
from services.api.users.repository import RatingRepository, UserRepository
from services.api.users.schemas import RatingCreate, UserCreate


class UserNotFound(NotFound):
    title = "User not found"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"No user with id {user_id}; create it with POST /v1/users.")


class UserService:
    def get(self, session: Session, user_id: int) -> AppUser:
        """The user, or UserNotFound."""
        user = UserRepository(session).get_by_id(user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    def create(self, session: Session, *, payload: UserCreate) -> AppUser:
        """Create a user.

        Raises:
            Conflict: Another user has this external id.
        """
        repository = UserRepository(session)
        if payload.external_id is not None and repository.get_by_external_id(payload.external_id) is not None:
            raise Conflict(f"A user with external id {payload.external_id!r} already exists.")
        return repository.create(**payload.model_dump())


class RatingService:
    def record(self, session: Session, state: AppState, *, payload: RatingCreate) -> tuple[Rating, bool]:
        """Insert or replace a user's rating of a movie. Returns it and whether it is new.

        Raises:
            UserNotFound, MovieNotFound: The user or the movie does not exist.
        """
        if not UserRepository(session).exists(payload.user_id):
            raise UserNotFound(payload.user_id)
        if not MovieRepository(session).exists(payload.movie_id):
            raise MovieNotFound(payload.movie_id)
        rating, created = RatingRepository(session).upsert(
            user_id=payload.user_id, movie_id=payload.movie_id, rating=payload.rating
        )
        after_commit(session, lambda: recommendation_service.invalidate(state, payload.user_id))
        return rating, created

    def list_for_user(
        self, session: Session, *, user_id: int, page: int, page_size: int
    ) -> tuple[list[Rating], int]:
        repository = RatingRepository(session)
        items = repository.list_for_user(user_id, offset=(page - 1) * page_size, limit=page_size)
        return list(items), repository.count_for_user(user_id)


user = UserService()
rating = RatingService()
