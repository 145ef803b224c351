"""What the dashboard reads: aggregates computed in PostgreSQL, and runs and versions from MLflow.

Every function takes an open `Connection` (or an MLflow tracking URI) and returns small,
picklable values (dataclasses or data frames with a handful of rows per variant or day), so the
app can cache them. No raw events leave the database: per-user numbers are summed into the
sufficient statistics the tests in `services.dashboard.stats` need.

Events are attributed to the variant of the user's `assignment` row (intention to treat): a user
stays in the arm they were first exposed to, whatever later events say. Events whose own
`variant_id` disagrees are counted by `data_quality` instead of being moved between arms.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    literal_column,
    or_,
    select,
)

from db.models import Assignment, Event, Experiment, Genre, ModelVersion, Movie, MovieGenre, Rating, Variant
from services.dashboard.stats import MeanSummary, RatioSummary

__all__ = [
    "DataQuality",
    "ExperimentRow",
    "MlflowUnavailable",
    "RegisteredVersion",
    "VariantMetrics",
    "activity_over_time",
    "catalog_coverage",
    "catalog_totals",
    "cumulative_series",
    "data_quality",
    "genre_mix",
    "get_experiment",
    "list_experiments",
    "list_mlflow_runs",
    "list_model_versions",
    "list_registered_versions",
    "rating_distribution",
    "top_movies",
    "variant_metrics",
]

WATCH_TYPES = ("click", "view")
"""Events that mean the user chose a recommended movie (for the rating of watched movies)."""


def _day(column: Any) -> Any:
    """The start of the UTC calendar day of a timestamptz column (a timestamp without zone)."""
    # Inline constants: with bound parameters, PostgreSQL cannot tell that the GROUP BY expression
    # is the selected one.
    return func.date_trunc(literal_column("'day'"), func.timezone(literal_column("'UTC'"), column))


def _days(n: int) -> Any:
    return func.make_interval(0, 0, 0, n)


# ---------------------------------------------------------------------------------------------
# experiments


@dataclass(frozen=True)
class ExperimentRow:
    """An experiment as the picker lists it."""

    id: int
    name: str
    description: str
    status: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    users: int


def _experiment_query() -> Any:
    users = (
        select(func.count())
        .where(Assignment.experiment_id == Experiment.id)
        .correlate(Experiment)
        .scalar_subquery()
    )
    return select(
        Experiment.id,
        Experiment.name,
        Experiment.description,
        Experiment.status,
        Experiment.created_at,
        Experiment.started_at,
        Experiment.stopped_at,
        users.label("users"),
    )


def list_experiments(connection: Connection) -> list[ExperimentRow]:
    """Every experiment, running ones first, then the most recently started or created."""
    running_first = case((Experiment.status == "running", 0), (Experiment.status == "stopped", 1), else_=2)
    query = _experiment_query().order_by(
        running_first, func.coalesce(Experiment.started_at, Experiment.created_at).desc(), Experiment.id
    )
    return [ExperimentRow(**row._mapping) for row in connection.execute(query)]


def get_experiment(connection: Connection, name: str) -> ExperimentRow | None:
    """One experiment by name, or None."""
    row = connection.execute(_experiment_query().where(Experiment.name == name)).one_or_none()
    return ExperimentRow(**row._mapping) if row is not None else None


@dataclass(frozen=True)
class VariantMetrics:
    """One arm of an experiment: its configuration and the per-user sums its tests need.

    Counts are over the users assigned to the arm; a user with no events counts as a user with
    zero impressions and zero clicks.
    """

    variant_id: int
    name: str
    weight: int
    is_control: bool
    config: Mapping[str, Any]
    assigned_users: int
    exposed_users: int
    """Users with at least one impression logged."""
    requests: int
    """Recommendation lists shown (distinct request ids of impressions)."""
    impressions: int
    clicks: int
    views: int
    rating_events: int
    clickers: int
    """Users with at least one click."""
    sum_clicks_sq: float
    sum_impressions_sq: float
    sum_clicks_impressions: float
    sum_ratings_sq: float
    watched_users: int
    """Users who clicked or viewed a recommended movie and have rated it."""
    watched_ratings: int
    watched_mean_rating: float
    """Mean rating over all (user, movie) pairs watched and rated."""
    watched_user_mean: float
    """Mean over users of each user's mean rating of watched recommendations."""
    watched_user_variance: float
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None

    @property
    def ctr(self) -> float:
        """Clicks per impression."""
        return self.clicks / self.impressions if self.impressions else math.nan

    @property
    def ctr_summary(self) -> RatioSummary:
        """Per-user (clicks, impressions) sums for the delta-method test."""
        return RatioSummary(
            n=self.assigned_users,
            sum_x=float(self.clicks),
            sum_y=float(self.impressions),
            sum_xx=self.sum_clicks_sq,
            sum_yy=self.sum_impressions_sq,
            sum_xy=self.sum_clicks_impressions,
        )

    @property
    def ratings_summary(self) -> MeanSummary:
        """Rating events per assigned user."""
        n = self.assigned_users
        if n == 0:
            return MeanSummary(0, math.nan, math.nan)
        mean = self.rating_events / n
        variance = (self.sum_ratings_sq - n * mean * mean) / (n - 1) if n > 1 else math.nan
        return MeanSummary(n, mean, max(variance, 0.0) if n > 1 else variance)

    @property
    def watched_summary(self) -> MeanSummary:
        """Per-user mean rating of the recommendations they watched, over users who watched one."""
        return MeanSummary(self.watched_users, self.watched_user_mean, self.watched_user_variance)


def _num(value: Any, default: float = 0.0) -> float:
    return float(value) if value is not None else default


def variant_metrics(connection: Connection, experiment_id: int) -> list[VariantMetrics]:
    """Per-variant counts and per-user sums of an experiment, in variant id order."""
    watched_types = Event.event_type.in_(WATCH_TYPES)
    per_user = (
        select(
            Assignment.variant_id,
            Assignment.user_id,
            func.count(Event.id).filter(Event.event_type == "impression").label("impressions"),
            func.count(Event.id).filter(Event.event_type == "click").label("clicks"),
            func.count(Event.id).filter(Event.event_type == "view").label("views"),
            func.count(Event.id).filter(Event.event_type == "rating").label("ratings"),
            func.count(distinct(Event.request_id)).filter(Event.event_type == "impression").label("requests"),
            func.min(Event.occurred_at).label("first_event_at"),
            func.max(Event.occurred_at).label("last_event_at"),
        )
        .select_from(Assignment)
        .outerjoin(
            Event, and_(Event.experiment_id == Assignment.experiment_id, Event.user_id == Assignment.user_id)
        )
        .where(Assignment.experiment_id == experiment_id)
        .group_by(Assignment.variant_id, Assignment.user_id)
        .cte("per_user")
    )
    pu = per_user.c
    by_variant = (
        select(
            pu.variant_id,
            func.count().label("assigned_users"),
            func.count().filter(pu.impressions > 0).label("exposed_users"),
            func.sum(pu.requests).label("requests"),
            func.sum(pu.impressions).label("impressions"),
            func.sum(pu.clicks).label("clicks"),
            func.sum(pu.views).label("views"),
            func.sum(pu.ratings).label("rating_events"),
            func.count().filter(pu.clicks > 0).label("clickers"),
            func.sum(pu.clicks * pu.clicks).label("sum_clicks_sq"),
            func.sum(pu.impressions * pu.impressions).label("sum_impressions_sq"),
            func.sum(pu.clicks * pu.impressions).label("sum_clicks_impressions"),
            func.sum(pu.ratings * pu.ratings).label("sum_ratings_sq"),
            func.min(pu.first_event_at).label("first_event_at"),
            func.max(pu.last_event_at).label("last_event_at"),
        )
        .group_by(pu.variant_id)
        .cte("by_variant")
    )
    watched_pairs = (
        select(Event.user_id, Event.movie_id)
        .where(Event.experiment_id == experiment_id, watched_types, Event.movie_id.is_not(None))
        .distinct()
        .subquery("watched_pairs")
    )
    per_user_watched = (
        select(
            Assignment.variant_id,
            Assignment.user_id,
            func.count().label("n"),
            func.avg(cast(Rating.rating, Float)).label("mean_rating"),
            func.sum(cast(Rating.rating, Float)).label("sum_rating"),
        )
        .select_from(Assignment)
        .join(watched_pairs, watched_pairs.c.user_id == Assignment.user_id)
        .join(
            Rating,
            and_(Rating.user_id == watched_pairs.c.user_id, Rating.movie_id == watched_pairs.c.movie_id),
        )
        .where(Assignment.experiment_id == experiment_id)
        .group_by(Assignment.variant_id, Assignment.user_id)
        .cte("per_user_watched")
    )
    pw = per_user_watched.c
    watched = (
        select(
            pw.variant_id,
            func.count().label("watched_users"),
            func.sum(pw.n).label("watched_ratings"),
            (func.sum(pw.sum_rating) / func.nullif(func.sum(pw.n), 0)).label("watched_mean_rating"),
            func.avg(pw.mean_rating).label("watched_user_mean"),
            func.var_samp(pw.mean_rating).label("watched_user_variance"),
        )
        .group_by(pw.variant_id)
        .cte("watched")
    )
    bv, w = by_variant.c, watched.c
    query = (
        select(
            Variant.id,
            Variant.name,
            Variant.weight,
            Variant.is_control,
            Variant.config,
            bv.assigned_users,
            bv.exposed_users,
            bv.requests,
            bv.impressions,
            bv.clicks,
            bv.views,
            bv.rating_events,
            bv.clickers,
            bv.sum_clicks_sq,
            bv.sum_impressions_sq,
            bv.sum_clicks_impressions,
            bv.sum_ratings_sq,
            bv.first_event_at,
            bv.last_event_at,
            w.watched_users,
            w.watched_ratings,
            w.watched_mean_rating,
            w.watched_user_mean,
            w.watched_user_variance,
        )
        .select_from(Variant)
        .outerjoin(by_variant, bv.variant_id == Variant.id)
        .outerjoin(watched, w.variant_id == Variant.id)
        .where(Variant.experiment_id == experiment_id)
        .order_by(Variant.id)
    )
    result = []
    for row in connection.execute(query):
        result.append(
            VariantMetrics(
                variant_id=row.id,
                name=row.name,
                weight=row.weight,
                is_control=row.is_control,
                config=dict(row.config or {}),
                assigned_users=int(_num(row.assigned_users)),
                exposed_users=int(_num(row.exposed_users)),
                requests=int(_num(row.requests)),
                impressions=int(_num(row.impressions)),
                clicks=int(_num(row.clicks)),
                views=int(_num(row.views)),
                rating_events=int(_num(row.rating_events)),
                clickers=int(_num(row.clickers)),
                sum_clicks_sq=_num(row.sum_clicks_sq),
                sum_impressions_sq=_num(row.sum_impressions_sq),
                sum_clicks_impressions=_num(row.sum_clicks_impressions),
                sum_ratings_sq=_num(row.sum_ratings_sq),
                watched_users=int(_num(row.watched_users)),
                watched_ratings=int(_num(row.watched_ratings)),
                watched_mean_rating=_num(row.watched_mean_rating, math.nan),
                watched_user_mean=_num(row.watched_user_mean, math.nan),
                watched_user_variance=_num(row.watched_user_variance, math.nan),
                first_event_at=row.first_event_at,
                last_event_at=row.last_event_at,
            )
        )
    return result


MAX_SERIES_DAYS = 120
"""The cumulative series covers at most the last this many days of an experiment."""


def cumulative_series(connection: Connection, experiment_id: int) -> pd.DataFrame:
    """Per UTC day and variant, everything that happened up to the end of that day.

    A user enters the experiment on the day of their exposure or of their first event, whichever
    is earlier (traffic replays write events in the past). Each row carries the per-user sums of
    `VariantMetrics` so the day's cumulative lift can be tested like the final one.

    Returns:
        Columns day (UTC date), variant_id, users, impressions, clicks, clickers, sum_clicks_sq,
        sum_impressions_sq, sum_clicks_impressions; empty when nobody is assigned.
    """
    entered = (
        select(
            Assignment.user_id,
            Assignment.variant_id,
            _day(
                func.least(
                    Assignment.exposed_at, func.coalesce(func.min(Event.occurred_at), Assignment.exposed_at)
                )
            ).label("day"),
            _day(
                func.greatest(
                    Assignment.exposed_at, func.coalesce(func.max(Event.occurred_at), Assignment.exposed_at)
                )
            ).label("last_day"),
        )
        .select_from(Assignment)
        .outerjoin(
            Event, and_(Event.experiment_id == Assignment.experiment_id, Event.user_id == Assignment.user_id)
        )
        .where(Assignment.experiment_id == experiment_id)
        .group_by(Assignment.user_id, Assignment.variant_id, Assignment.exposed_at)
        .cte("entered")
    )
    bounds = select(
        func.greatest(
            func.min(entered.c.day), func.max(entered.c.last_day) - _days(MAX_SERIES_DAYS - 1)
        ).label("first"),
        func.max(entered.c.last_day).label("last"),
    ).cte("bounds")
    days = (
        select(func.generate_series(bounds.c.first, bounds.c.last, _days(1)).label("day"))
        .select_from(bounds)
        .cte("days")
    )
    user_day = (
        select(
            Assignment.user_id,
            _day(Event.occurred_at).label("day"),
            func.count().filter(Event.event_type == "impression").label("impressions"),
            func.count().filter(Event.event_type == "click").label("clicks"),
        )
        .select_from(Assignment)
        .join(
            Event, and_(Event.experiment_id == Assignment.experiment_id, Event.user_id == Assignment.user_id)
        )
        .where(Assignment.experiment_id == experiment_id)
        .group_by(Assignment.user_id, _day(Event.occurred_at))
        .cte("user_day")
    )
    cumulative = (
        select(
            days.c.day,
            entered.c.variant_id,
            entered.c.user_id,
            func.coalesce(func.sum(user_day.c.impressions), 0).label("impressions"),
            func.coalesce(func.sum(user_day.c.clicks), 0).label("clicks"),
        )
        .select_from(days)
        .join(entered, entered.c.day <= days.c.day)
        .outerjoin(user_day, and_(user_day.c.user_id == entered.c.user_id, user_day.c.day <= days.c.day))
        .group_by(days.c.day, entered.c.variant_id, entered.c.user_id)
        .cte("cumulative")
    )
    c = cumulative.c
    query = (
        select(
            func.date(c.day).label("day"),
            c.variant_id,
            func.count().label("users"),
            cast(func.sum(c.impressions), BigInteger).label("impressions"),
            cast(func.sum(c.clicks), BigInteger).label("clicks"),
            func.count().filter(c.clicks > 0).label("clickers"),
            cast(func.sum(c.clicks * c.clicks), Float).label("sum_clicks_sq"),
            cast(func.sum(c.impressions * c.impressions), Float).label("sum_impressions_sq"),
            cast(func.sum(c.clicks * c.impressions), Float).label("sum_clicks_impressions"),
        )
        .group_by(c.day, c.variant_id)
        .order_by(c.day, c.variant_id)
    )
    rows = connection.execute(query).all()
    columns = [
        "day",
        "variant_id",
        "users",
        "impressions",
        "clicks",
        "clickers",
        "sum_clicks_sq",
        "sum_impressions_sq",
        "sum_clicks_impressions",
    ]
    return pd.DataFrame([tuple(row) for row in rows], columns=columns)


@dataclass(frozen=True)
class DataQuality:
    """Checks that the event log agrees with the assignments; non-zero numbers need a look."""

    events: int
    """Events tagged with the experiment."""
    unassigned_events: int
    """Events tagged with the experiment from users who have no assignment row."""
    mismatched_events: int
    """Events whose variant differs from the user's assigned variant."""
    users_without_impressions: int
    """Assigned users with no impression logged (served, but the client never reported it)."""
    clicks_without_impression: int
    """Clicks and views whose request id has no impression (a client logging bug)."""
    latest_event_at: datetime | None = None


def data_quality(connection: Connection, experiment_id: int) -> DataQuality:
    """Consistency checks between the experiment's events and its assignments."""
    joined = (
        select(
            func.count(Event.id).label("events"),
            func.count(Event.id).filter(Assignment.user_id.is_(None)).label("unassigned"),
            func.count(Event.id)
            .filter(
                Assignment.user_id.is_not(None),
                Event.variant_id.is_not(None),
                Event.variant_id != Assignment.variant_id,
            )
            .label("mismatched"),
            func.max(Event.occurred_at).label("latest"),
        )
        .select_from(Event)
        .outerjoin(
            Assignment,
            and_(Assignment.experiment_id == Event.experiment_id, Assignment.user_id == Event.user_id),
        )
        .where(Event.experiment_id == experiment_id)
    )
    events = connection.execute(joined).one()
    has_impression = (
        select(literal(1))
        .where(
            Event.experiment_id == experiment_id,
            Event.user_id == Assignment.user_id,
            Event.event_type == "impression",
        )
        .exists()
    )
    silent = connection.scalar(
        select(func.count()).where(Assignment.experiment_id == experiment_id, ~has_impression)
    )
    impression = Event.__table__.alias("impression")
    orphan_clicks = connection.scalar(
        select(func.count())
        .select_from(Event)
        .where(
            Event.experiment_id == experiment_id,
            Event.event_type.in_(WATCH_TYPES),
            Event.request_id.is_not(None),
            ~select(literal(1))
            .where(
                impression.c.request_id == Event.request_id,
                impression.c.event_type == "impression",
                or_(impression.c.movie_id == Event.movie_id, Event.movie_id.is_(None)),
            )
            .exists(),
        )
    )
    return DataQuality(
        events=int(events.events),
        unassigned_events=int(events.unassigned),
        mismatched_events=int(events.mismatched),
        users_without_impressions=int(silent or 0),
        clicks_without_impression=int(orphan_clicks or 0),
        latest_event_at=events.latest,
    )


# ---------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class CatalogTotals:
    """Row counts of the main tables and the span of the ratings."""

    users: int
    movies: int
    ratings: int
    events: int
    first_rating_at: datetime | None
    last_rating_at: datetime | None
    mean_rating: float


def catalog_totals(connection: Connection) -> CatalogTotals:
    """How much data there is."""
    from db.models import AppUser

    ratings = connection.execute(
        select(
            func.count(),
            func.min(Rating.rated_at),
            func.max(Rating.rated_at),
            func.avg(cast(Rating.rating, Float)),
        )
    ).one()
    return CatalogTotals(
        users=int(connection.scalar(select(func.count()).select_from(AppUser)) or 0),
        movies=int(connection.scalar(select(func.count()).select_from(Movie)) or 0),
        ratings=int(ratings[0]),
        events=int(connection.scalar(select(func.count()).select_from(Event)) or 0),
        first_rating_at=ratings[1],
        last_rating_at=ratings[2],
        mean_rating=_num(ratings[3], math.nan),
    )


def rating_distribution(connection: Connection) -> pd.DataFrame:
    """How many ratings of each value (columns rating, ratings)."""
    rows = connection.execute(
        select(Rating.rating, func.count().label("ratings")).group_by(Rating.rating).order_by(Rating.rating)
    ).all()
    return pd.DataFrame([(float(r.rating), int(r.ratings)) for r in rows], columns=["rating", "ratings"])


def activity_over_time(connection: Connection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings per week, and events per day and type.

    Returns:
        (ratings: columns week, ratings, users), (events: columns day, event_type, events).
    """
    week = func.date(func.date_trunc("week", func.timezone("UTC", Rating.rated_at)))
    ratings = connection.execute(
        select(
            week.label("week"),
            func.count().label("ratings"),
            func.count(distinct(Rating.user_id)).label("users"),
        )
        .group_by(week)
        .order_by(week)
    ).all()
    day = func.date(func.date_trunc("day", func.timezone("UTC", Event.occurred_at)))
    events = connection.execute(
        select(day.label("day"), Event.event_type, func.count().label("events"))
        .group_by(day, Event.event_type)
        .order_by(day, Event.event_type)
    ).all()
    return (
        pd.DataFrame([tuple(r) for r in ratings], columns=["week", "ratings", "users"]),
        pd.DataFrame([tuple(r) for r in events], columns=["day", "event_type", "events"]),
    )


def top_movies(connection: Connection, *, limit: int = 20, min_ratings: int = 20) -> pd.DataFrame:
    """The most rated movies with their mean rating, and the best rated among those with enough ratings.

    Returns:
        Columns movie_id, title, year, ratings, mean_rating, sorted by ratings (most first).
    """
    query = (
        select(
            Movie.id.label("movie_id"),
            Movie.title,
            Movie.year,
            func.count().label("ratings"),
            func.avg(cast(Rating.rating, Float)).label("mean_rating"),
        )
        .join(Rating, Rating.movie_id == Movie.id)
        .group_by(Movie.id)
        .having(func.count() >= min_ratings)
        .order_by(func.count().desc(), Movie.id)
        .limit(limit)
    )
    rows = connection.execute(query).all()
    return pd.DataFrame(
        [(r.movie_id, r.title, r.year, int(r.ratings), float(r.mean_rating)) for r in rows],
        columns=["movie_id", "title", "year", "ratings", "mean_rating"],
    )


def genre_mix(connection: Connection) -> pd.DataFrame:
    """Per genre: its share of the catalog, of the ratings, and of the recommendations shown.

    A movie with several genres counts once in each, so shares add up to more than 100%.

    Returns:
        Columns genre, movies, ratings, impressions, movie_share, rating_share, impression_share.
    """
    movies = select(MovieGenre.genre_id, func.count().label("n")).group_by(MovieGenre.genre_id).cte("movies")
    ratings = (
        select(MovieGenre.genre_id, func.count().label("n"))
        .join(Rating, Rating.movie_id == MovieGenre.movie_id)
        .group_by(MovieGenre.genre_id)
        .cte("ratings")
    )
    impressions = (
        select(MovieGenre.genre_id, func.count().label("n"))
        .join(Event, Event.movie_id == MovieGenre.movie_id)
        .where(Event.event_type == "impression")
        .group_by(MovieGenre.genre_id)
        .cte("impressions")
    )
    rows = connection.execute(
        select(
            Genre.name,
            func.coalesce(movies.c.n, 0),
            func.coalesce(ratings.c.n, 0),
            func.coalesce(impressions.c.n, 0),
        )
        .select_from(Genre)
        .outerjoin(movies, movies.c.genre_id == Genre.id)
        .outerjoin(ratings, ratings.c.genre_id == Genre.id)
        .outerjoin(impressions, impressions.c.genre_id == Genre.id)
        .order_by(func.coalesce(ratings.c.n, 0).desc(), Genre.name)
    ).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["genre", "movies", "ratings", "impressions"])
    total_movies = int(connection.scalar(select(func.count()).select_from(Movie)) or 0)
    total_ratings = int(connection.scalar(select(func.count()).select_from(Rating)) or 0)
    total_impressions = int(
        connection.scalar(
            select(func.count()).where(Event.event_type == "impression", Event.movie_id.is_not(None))
        )
        or 0
    )
    frame["movie_share"] = frame["movies"] / total_movies if total_movies else math.nan
    frame["rating_share"] = frame["ratings"] / total_ratings if total_ratings else math.nan
    frame["impression_share"] = frame["impressions"] / total_impressions if total_impressions else math.nan
    return frame


def catalog_coverage(connection: Connection, experiment_id: int | None = None) -> pd.DataFrame:
    """How much of the catalog the recommendations reach, from impression events.

    Coverage is the share of catalog movies shown at least once. The Gini coefficient of
    impressions over the whole catalog (movies never shown count as zeros) says how concentrated
    they are: 0 when every movie is shown equally often, close to 1 when a few get everything.

    Args:
        experiment_id: per variant of this experiment; None for all impressions, as one row.

    Returns:
        Columns variant_id (None for all), variant, impressions, movies_shown, catalog, coverage, gini.
    """
    catalog = int(connection.scalar(select(func.count()).select_from(Movie)) or 0)
    group = Event.variant_id if experiment_id is not None else literal(None, BigInteger)
    per_movie = select(group.label("variant_id"), Event.movie_id, func.count().label("n")).where(
        Event.event_type == "impression", Event.movie_id.is_not(None)
    )
    if experiment_id is not None:
        per_movie = per_movie.where(Event.experiment_id == experiment_id)
    per_movie_cte = per_movie.group_by(group, Event.movie_id).cte("per_movie")
    pm = per_movie_cte.c
    # Rank shown movies by ascending count within each group; the unshown catalog movies are the
    # lowest ranks (zeros), so shown movie i has rank (catalog - shown + i).
    ranked = select(
        pm.variant_id,
        pm.n,
        func.row_number().over(partition_by=pm.variant_id, order_by=pm.n).label("i"),
        func.count().over(partition_by=pm.variant_id).label("shown"),
    ).cte("ranked")
    r = ranked.c
    rank = literal(catalog) - r.shown + r.i
    rows = connection.execute(
        select(
            r.variant_id,
            cast(func.sum(r.n), BigInteger).label("impressions"),
            func.count().label("movies_shown"),
            cast(func.sum(rank * r.n), Float).label("weighted"),
        ).group_by(r.variant_id)
    ).all()
    names = {}
    if experiment_id is not None:
        names = dict(
            connection.execute(
                select(Variant.id, Variant.name).where(Variant.experiment_id == experiment_id)
            ).all()
        )
    records = []
    for row in rows:
        impressions = int(row.impressions)
        gini = (
            2 * float(row.weighted) / (catalog * impressions) - (catalog + 1) / catalog
            if catalog and impressions
            else math.nan
        )
        records.append(
            (
                row.variant_id,
                names.get(row.variant_id, "all" if experiment_id is None else "untagged"),
                impressions,
                int(row.movies_shown),
                catalog,
                int(row.movies_shown) / catalog if catalog else math.nan,
                gini,
            )
        )
    return pd.DataFrame(
        records,
        columns=["variant_id", "variant", "impressions", "movies_shown", "catalog", "coverage", "gini"],
    )


# ---------------------------------------------------------------------------------------------
# models


def list_model_versions(connection: Connection, name: str | None = None) -> pd.DataFrame:
    """Registered versions as the application recorded them (status, gate reason, metrics).

    Returns:
        Columns name, version, status, mlflow_run_id, created_at, promoted_at, reason, and one column
        per numeric metric in the `metrics` JSON (plus `model_version`, the serving version string);
        newest first.
    """
    query = select(
        ModelVersion.name,
        ModelVersion.version,
        ModelVersion.status,
        ModelVersion.mlflow_run_id,
        ModelVersion.created_at,
        ModelVersion.promoted_at,
        ModelVersion.reason,
        ModelVersion.metrics,
    ).order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
    if name is not None:
        query = query.where(ModelVersion.name == name)
    rows = connection.execute(query).all()
    base = ["name", "version", "status", "mlflow_run_id", "created_at", "promoted_at", "reason"]
    frame = pd.DataFrame([tuple(r)[:-1] for r in rows], columns=base)
    metrics = pd.DataFrame([_flat_metrics(r.metrics) for r in rows], index=frame.index)
    return pd.concat([frame, metrics], axis=1) if not metrics.empty else frame


def _flat_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float | str]:
    """Numeric metrics as floats, plus the serving `model_version` string the worker stores there."""
    flat: dict[str, float | str] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            flat[key] = float(value)
        elif key == "model_version" and isinstance(value, str):
            flat[key] = value
    return flat


class MlflowUnavailable(RuntimeError):
    """The MLflow tracking server did not answer, or the experiment does not exist yet."""


@contextmanager
def _mlflow_client(tracking_uri: str) -> Iterator[Any]:
    """An MLflow client that fails fast instead of retrying for minutes."""
    import os

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    from mlflow.tracking import MlflowClient

    try:
        yield MlflowClient(tracking_uri=tracking_uri)
    except MlflowUnavailable:
        raise
    except Exception as exc:  # connection refused, timeouts, REST errors: all mean "not now"
        reason = str(exc).split(" failed with exception ")[0].strip() or type(exc).__name__
        if "ConnectionError" in str(exc) or "Max retries" in str(exc) or "refused" in str(exc).lower():
            reason = "connection refused"
        raise MlflowUnavailable(f"MLflow at {tracking_uri} did not answer ({reason[:200]})") from exc


def list_mlflow_runs(
    tracking_uri: str, experiment_name: str = "movierec", *, limit: int = 500
) -> pd.DataFrame:
    """Training runs of the experiment, oldest first.

    Returns:
        Columns run_id, run_name, status, start_time, end_time, and one `metrics.*`, `params.*` and
        `tags.*` column per key, as `mlflow.search_runs` returns them.

    Raises:
        MlflowUnavailable: the server is down or the experiment does not exist yet.
    """
    with _mlflow_client(tracking_uri) as client:
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            raise MlflowUnavailable(f"MLflow has no experiment {experiment_name!r} yet")
        runs = client.search_runs(
            [experiment.experiment_id], max_results=limit, order_by=["attributes.start_time ASC"]
        )
    records = []
    for run in runs:
        record: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(run.info.end_time, unit="ms", utc=True)
            if run.info.end_time
            else pd.NaT,
        }
        record.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        record.update({f"params.{k}": v for k, v in run.data.params.items()})
        record.update({f"tags.{k}": v for k, v in run.data.tags.items() if not k.startswith("mlflow.")})
        records.append(record)
    return pd.DataFrame(records)


@dataclass(frozen=True)
class RegisteredVersion:
    """A version of a registered model in the MLflow registry."""

    name: str
    version: int
    run_id: str | None
    aliases: tuple[str, ...]
    created_at: datetime | None
    tags: Mapping[str, str] = field(default_factory=dict)


def list_registered_versions(tracking_uri: str, name: str = "movierec") -> list[RegisteredVersion]:
    """Every version of a registered model with its aliases, newest first.

    Raises:
        MlflowUnavailable: the server is down.
    """
    with _mlflow_client(tracking_uri) as client:
        versions = client.search_model_versions(f"name = '{name}'")
    result = [
        RegisteredVersion(
            name=v.name,
            version=int(v.version),
            run_id=v.run_id,
            aliases=tuple(getattr(v, "aliases", ()) or ()),
            created_at=pd.to_datetime(v.creation_timestamp, unit="ms", utc=True).to_pydatetime()
            if v.creation_timestamp
            else None,
            tags=dict(v.tags or {}),
        )
        for v in versions
    ]
    return sorted(result, key=lambda v: v.version, reverse=True)
