"""Queries on `app_user` and `rating`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import AppUser, Rating

History = list[tuple[int, float]]


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_id(self, user_id: int) -> AppUser | None:
        return self.session.get(AppUser, user_id)

    def get_by_external_id(self, external_id: str) -> AppUser | None:
        return self.session.scalars(select(AppUser).where(AppUser.external_id == external_id)).one_or_none()

    def exists(self, user_id: int) -> bool:
        return self.session.scalar(select(func.count()).where(AppUser.id == user_id)) == 1

    def create(
        self,
        *,
        external_id: str | None,
        age: int | None,
        gender: str | None,
        occupation: str | None,
        zip_code: str | None,
    ) -> AppUser:
        user = AppUser(
            external_id=external_id, age=age, gender=gender, occupation=occupation, zip_code=zip_code
        )
        self.session.add(user)
        self.session.flush()
        self.session.refresh(user)
        return user


class RatingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: int, movie_id: int) -> Rating | None:
        return self.session.get(Rating, (user_id, movie_id))

    def upsert(self, *, user_id: int, movie_id: int, rating: float) -> tuple[Rating, bool]:
        """Insert or replace a rating. Returns the row and whether it was new."""
        statement = (
            insert(Rating)
            .values(user_id=user_id, movie_id=movie_id, rating=rating)
            .on_conflict_do_update(
                index_elements=[Rating.user_id, Rating.movie_id],
                set_={"rating": rating, "rated_at": func.now()},
            )
            # xmax is 0 for a freshly inserted row version, non-zero for an updated one.
            .returning(Rating.rated_at, text("(xmax = 0) AS inserted"))
        )
        rated_at, inserted = self.session.execute(statement).one()
        row = Rating(user_id=user_id, movie_id=movie_id, rating=rating, rated_at=rated_at)
        return row, bool(inserted)

    def list_for_user(self, user_id: int, *, offset: int, limit: int) -> Sequence[Rating]:
        query = (
            select(Rating)
            .where(Rating.user_id == user_id)
            .order_by(Rating.rated_at.desc(), Rating.movie_id)
            .offset(offset)
            .limit(limit)
        )
        return self.session.scalars(query).all()

    def count_for_user(self, user_id: int) -> int:
        return int(self.session.scalar(select(func.count()).where(Rating.user_id == user_id)) or 0)

    def histories(self, user_ids: Sequence[int]) -> dict[int, History]:
        """Each user's ratings as (movie_id, rating), oldest first; users without any are left out."""
        if not user_ids:
            return {}
        rows = self.session.execute(
            select(Rating.user_id, Rating.movie_id, Rating.rating)
            .where(Rating.user_id.in_(list(user_ids)))
            .order_by(Rating.user_id, Rating.rated_at, Rating.movie_id)
        )
        out: dict[int, History] = defaultdict(list)
        for user_id, movie_id, value in rows:
            out[int(user_id)].append((int(movie_id), float(value)))
        return dict(out)
