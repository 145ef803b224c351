"""The relational schema: catalog, people, users, ratings, events, experiments, API keys, models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

EVENT_TYPES = ("impression", "click", "view", "rating")
CREDIT_ROLES = (
    "actor",
    "director",
    "writer",
    "producer",
    "executive_producer",
    "cinematographer",
    "editor",
    "composer",
    "production_designer",
    "costume_designer",
)
EXPERIMENT_STATUSES = ("draft", "running", "stopped")
MODEL_STATUSES = ("candidate", "champion", "rejected", "archived")
API_KEY_SCOPES = ("read", "write", "admin")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base with the naming convention every constraint follows."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class AppUser(Base):
    """Someone who gets recommendations. MovieLens ids are kept as ours."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigInteger, Identity(start=1), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    age: Mapped[int | None] = mapped_column(SmallInteger)
    gender: Mapped[str | None] = mapped_column(String(20))
    occupation: Mapped[str | None] = mapped_column(String(100))
    zip_code: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (CheckConstraint("age IS NULL OR age BETWEEN 0 AND 150", name="age_range"),)


class Genre(Base):
    """A genre label such as Comedy or Film-Noir."""

    __tablename__ = "genre"

    id: Mapped[int] = mapped_column(SmallInteger, Identity(start=1), primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class MovieGenre(Base):
    """Which genres a movie has."""

    __tablename__ = "movie_genre"

    movie_id: Mapped[int] = mapped_column(ForeignKey("movie.id", ondelete="CASCADE"), primary_key=True)
    genre_id: Mapped[int] = mapped_column(
        ForeignKey("genre.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Movie(Base):
    """A catalog entry, with the ids other catalogs know it by."""

    __tablename__ = "movie"

    id: Mapped[int] = mapped_column(BigInteger, Identity(start=1), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(SmallInteger, index=True)
    imdb_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    tmdb_id: Mapped[int | None] = mapped_column(Integer)
    freebase_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = created_at_column()

    genres: Mapped[list[Genre]] = relationship(
        secondary="movie_genre", order_by="Genre.name", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint("length(title) > 0", name="title_not_empty"),
        CheckConstraint("year IS NULL OR year BETWEEN 1870 AND 2100", name="year_range"),
    )


class Person(Base):
    """An actor, director, writer... keyed by Freebase id when we have one (names may be unknown)."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(BigInteger, Identity(start=1), primary_key=True)
    freebase_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(Text)


class Credit(Base):
    """A person's role in a movie."""

    __tablename__ = "credit"

    movie_id: Mapped[int] = mapped_column(ForeignKey("movie.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(30), primary_key=True)

    __table_args__ = (CheckConstraint(_in("role", CREDIT_ROLES), name="role_known"),)


class Rating(Base):
    """A user's current rating of a movie; re-rating replaces it."""

    __tablename__ = "rating"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    movie_id: Mapped[int] = mapped_column(ForeignKey("movie.id", ondelete="CASCADE"), primary_key=True)
    rating: Mapped[float] = mapped_column(REAL)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(
            "rating >= 0.5 AND rating <= 5 AND rating * 2 = round(rating * 2)", name="half_stars"
        ),
        Index("ix_rating_movie_id", "movie_id"),
        Index("ix_rating_rated_at", "rated_at"),
    )


class MovieTag(Base):
    """A free-text tag a user put on a movie (MovieLens `tags.csv`)."""

    __tablename__ = "movie_tag"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    movie_id: Mapped[int] = mapped_column(
        ForeignKey("movie.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tag: Mapped[str] = mapped_column(Text, primary_key=True)
    tagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Experiment(Base):
    """An A/B test: users are hashed with `salt` into buckets that map to variants."""

    __tablename__ = "experiment"

    id: Mapped[int] = mapped_column(Integer, Identity(start=1), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, server_default="")
    salt: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), server_default="draft")
    created_at: Mapped[datetime] = created_at_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    variants: Mapped[list[Variant]] = relationship(
        back_populates="experiment", order_by="Variant.id", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint(_in("status", EXPERIMENT_STATUSES), name="status_known"),
        CheckConstraint("name ~ '^[a-z0-9][a-z0-9_-]*$'", name="name_slug"),
    )


class Variant(Base):
    """One arm of an experiment and what it serves (a model alias or version, a strategy)."""

    __tablename__ = "variant"

    id: Mapped[int] = mapped_column(Integer, Identity(start=1), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiment.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    weight: Mapped[int] = mapped_column(SmallInteger)
    is_control: Mapped[bool] = mapped_column(server_default=text("false"))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    experiment: Mapped[Experiment] = relationship(back_populates="variants")

    __table_args__ = (
        UniqueConstraint("experiment_id", "name"),
        CheckConstraint("weight BETWEEN 0 AND 100", name="weight_percent"),
    )


class Assignment(Base):
    """The variant a user was exposed to, written once per user and experiment."""

    __tablename__ = "assignment"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiment.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variant.id", ondelete="CASCADE"), index=True)
    bucket: Mapped[int] = mapped_column(SmallInteger)
    exposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint("bucket BETWEEN 0 AND 9999", name="bucket_range"),)


class Event(Base):
    """Something a user did with a recommendation: impression, click, view or rating."""

    __tablename__ = "event"

    id: Mapped[int] = mapped_column(BigInteger, Identity(start=1), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(BigInteger)
    movie_id: Mapped[int | None] = mapped_column(BigInteger)
    request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiment.id", ondelete="SET NULL"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variant.id", ondelete="SET NULL"))
    position: Mapped[int | None] = mapped_column(SmallInteger)
    value: Mapped[float | None] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(_in("event_type", EVENT_TYPES), name="event_type_known"),
        CheckConstraint("position IS NULL OR position >= 0", name="position_non_negative"),
        Index("ix_event_experiment_variant_type", "experiment_id", "variant_id", "event_type", "occurred_at"),
        Index("ix_event_user_id_occurred_at", "user_id", "occurred_at"),
    )


class ApiKey(Base):
    """A client's API key; only its SHA-256 digest is stored."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, Identity(start=1), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("scopes <@ ARRAY['read', 'write', 'admin']::varchar[]", name="scopes_known"),
        CheckConstraint("cardinality(scopes) > 0", name="scopes_not_empty"),
    )


class ModelVersion(Base):
    """A trained model registered in MLflow, and whether it passed the quality gate."""

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(Integer, Identity(start=1), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), server_default="candidate")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("name", "version"),
        CheckConstraint(_in("status", MODEL_STATUSES), name="status_known"),
        Index(
            "ix_model_version_one_champion",
            "name",
            unique=True,
            postgresql_where=text("status = 'champion'"),
        ),
    )


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` and the response its first request got, replayed to retries."""

    __tablename__ = "idempotency_key"

    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    response: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (Index("ix_idempotency_key_created_at", "created_at"),)
