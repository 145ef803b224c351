"""A small, hand-countable database for the dashboard tests, written and committed with plain SQL.

Experiment `svd-vs-hybrid` (running, 50/50):

| variant | users | impressions | clicks | users who clicked | watched ratings |
| --- | --- | --- | --- | --- | --- |
| svd (control) | 20 (ids 1-20) | 200 | 16 | 12 | 3 or 4 stars |
| hybrid | 20 (ids 21-40) | 200 | 26 | 16 | 4 or 5 stars |

Experiment `lopsided` (stopped, 50/50) has 45 and 15 users: a sample ratio mismatch.
Experiment `next-idea` is a draft with two variants and no users.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, create_engine, insert, pool

from db.models import (
    AppUser,
    Assignment,
    Event,
    Experiment,
    Genre,
    ModelVersion,
    Movie,
    MovieGenre,
    Rating,
    Variant,
)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
MOVIES = [
    (1, "Toy Story", 1995, ("Animation", "Comedy")),
    (2, "GoldenEye", 1995, ("Action", "Thriller")),
    (3, "Four Rooms", 1995, ("Thriller",)),
    (4, "Get Shorty", 1995, ("Action", "Comedy", "Drama")),
    (5, "Copycat", 1995, ("Crime", "Drama", "Thriller")),
    (6, "Twelve Monkeys", 1995, ("Drama", "Sci-Fi")),
    (7, "Babe", 1995, ("Children", "Comedy", "Drama")),
    (8, "Dead Man Walking", 1995, ("Drama",)),
    (9, "Richard III", 1995, ("Drama", "War")),
    (10, "Seven", 1995, ("Crime", "Thriller")),
    (11, "The Usual Suspects", 1995, ("Crime", "Thriller")),
    (12, "Mighty Aphrodite", 1995, ("Comedy",)),
]

CONTROL_USERS = range(1, 21)
TREATMENT_USERS = range(21, 41)
EXPECTED = {
    "svd": {"users": 20, "impressions": 200, "clicks": 16, "clickers": 12},
    "hybrid": {"users": 20, "impressions": 200, "clicks": 26, "clickers": 16},
}


def _clicks(user_id: int) -> int:
    """Clicks of a user: control users 1-12 click once and 1-4 twice; treatment 21-36 once, 21-30 twice."""
    if user_id in CONTROL_USERS:
        return (user_id <= 12) + (user_id <= 4)
    return (user_id <= 36) + (user_id <= 30)


def _event(values: dict[str, Any]) -> dict[str, Any]:
    """An event row with every column named (bulk inserts need the same keys in every row)."""
    defaults = {"movie_id": None, "request_id": None, "position": None, "value": None}
    return {**defaults, **values}


def seed(connection: Connection) -> None:
    """Write the seed rows (the caller commits)."""
    genre_names = sorted({g for *_, genres in MOVIES for g in genres})
    connection.execute(insert(Genre), [{"id": i + 1, "name": name} for i, name in enumerate(genre_names)])
    genre_id = {name: i + 1 for i, name in enumerate(genre_names)}
    connection.execute(insert(Movie), [{"id": m, "title": t, "year": y} for m, t, y, _ in MOVIES])
    connection.execute(
        insert(MovieGenre), [{"movie_id": m, "genre_id": genre_id[g]} for m, _, _, gs in MOVIES for g in gs]
    )
    connection.execute(insert(AppUser), [{"id": u, "external_id": str(u)} for u in range(1, 41)])

    # Historical ratings, one year before the experiment: users rate movies 7-12.
    history = [
        {
            "user_id": u,
            "movie_id": m,
            "rating": float(1 + (u * m) % 5),
            "rated_at": START - timedelta(days=365 - (u * 3 + m) % 60),
        }
        for u in range(1, 41)
        for m in range(7, 13)
        if (u + m) % 3
    ]
    connection.execute(insert(Rating), history)

    experiment_id = connection.execute(
        insert(Experiment).returning(Experiment.id),
        {
            "name": "svd-vs-hybrid",
            "description": "SVD against the hybrid recommender",
            "salt": "s1",
            "status": "running",
            "started_at": START,
        },
    ).scalar_one()
    control_id, treatment_id = connection.execute(
        insert(Variant).returning(Variant.id, sort_by_parameter_order=True),
        [
            {
                "experiment_id": experiment_id,
                "name": "svd",
                "weight": 50,
                "is_control": True,
                "config": {"strategy": "svd"},
            },
            {
                "experiment_id": experiment_id,
                "name": "hybrid",
                "weight": 50,
                "is_control": False,
                "config": {"strategy": "hybrid"},
            },
        ],
    ).scalars()
    assignments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    for user_id in range(1, 41):
        variant_id = control_id if user_id in CONTROL_USERS else treatment_id
        first = START + timedelta(days=user_id % 5, hours=user_id % 7)
        assignments.append(
            {
                "experiment_id": experiment_id,
                "user_id": user_id,
                "variant_id": variant_id,
                "bucket": user_id * 97 % 10000,
                "exposed_at": first,
            }
        )
        common = {"user_id": user_id, "experiment_id": experiment_id, "variant_id": variant_id}
        for session in range(2):
            request_id = uuid.UUID(int=user_id * 10 + session)
            at = first + timedelta(days=2 * session)
            for position in range(5):
                movie_id = 1 + (position + session * 5 + user_id) % 6 if position < 4 else 1 + session
                events.append(
                    {
                        **common,
                        "event_type": "impression",
                        "movie_id": movie_id,
                        "request_id": request_id,
                        "position": position,
                        "occurred_at": at,
                    }
                )
        for k in range(_clicks(user_id)):
            movie_id = 1 + k  # the movie shown last in session k
            at = first + timedelta(days=2 * k, minutes=3)
            request_id = uuid.UUID(int=user_id * 10 + k)
            stars = (3.0 + (user_id + k) % 2) if variant_id == control_id else (4.0 + (user_id + k) % 2)
            events.append(
                {
                    **common,
                    "event_type": "click",
                    "movie_id": movie_id,
                    "request_id": request_id,
                    "position": 4,
                    "occurred_at": at,
                }
            )
            events.append(
                {
                    **common,
                    "event_type": "rating",
                    "movie_id": movie_id,
                    "request_id": request_id,
                    "value": stars,
                    "occurred_at": at + timedelta(hours=2),
                }
            )
            ratings.append(
                {
                    "user_id": user_id,
                    "movie_id": movie_id,
                    "rating": stars,
                    "rated_at": at + timedelta(hours=2),
                }
            )
    connection.execute(insert(Assignment), assignments)
    connection.execute(insert(Event), [_event(e) for e in events])
    connection.execute(insert(Rating), ratings)

    lopsided = connection.execute(
        insert(Experiment).returning(Experiment.id),
        {
            "name": "lopsided",
            "salt": "s2",
            "status": "stopped",
            "started_at": START - timedelta(days=30),
            "stopped_at": START - timedelta(days=10),
        },
    ).scalar_one()
    a, b = connection.execute(
        insert(Variant).returning(Variant.id, sort_by_parameter_order=True),
        [
            {"experiment_id": lopsided, "name": "a", "weight": 50, "is_control": True},
            {"experiment_id": lopsided, "name": "b", "weight": 50, "is_control": False},
        ],
    ).scalars()
    connection.execute(
        insert(Assignment),
        [
            {
                "experiment_id": lopsided,
                "user_id": 1000 + i,
                "variant_id": a if i < 45 else b,
                "bucket": i,
                "exposed_at": START - timedelta(days=30 - i % 20),
            }
            for i in range(60)
        ],
    )
    connection.execute(
        insert(Event),
        [
            _event(
                {
                    "event_type": "impression",
                    "user_id": 1000 + i,
                    "movie_id": 1 + i % 12,
                    "experiment_id": lopsided,
                    "variant_id": a if i < 45 else b,
                    "occurred_at": START - timedelta(days=30 - i % 20),
                }
            )
            for i in range(60)
        ],
    )
    next_idea = connection.execute(
        insert(Experiment).returning(Experiment.id),
        {"name": "next-idea", "salt": "s3", "status": "draft", "created_at": START + timedelta(days=5)},
    ).scalar_one()
    connection.execute(
        insert(Variant),
        [
            {"experiment_id": next_idea, "name": "control", "weight": 50, "is_control": True, "config": {}},
            {
                "experiment_id": next_idea,
                "name": "ease",
                "weight": 50,
                "is_control": False,
                "config": {"strategy": "ease"},
            },
        ],
    )

    connection.execute(
        insert(ModelVersion),
        [
            {
                "name": "movierec",
                "version": 1,
                "mlflow_run_id": "run1",
                "status": "archived",
                "metrics": {"rmse": 0.951, "ndcg_at_10": 0.081, "precision_at_10": 0.12, "coverage": 0.21},
                "created_at": START - timedelta(days=3),
                "promoted_at": START - timedelta(days=3),
                "reason": "first champion: rmse 0.9510 <= 1.1000, ndcg_at_10 0.0810 >= 0.0100",
            },
            {
                "name": "movierec",
                "version": 2,
                "mlflow_run_id": "run2",
                "status": "champion",
                "metrics": {"rmse": 0.932, "ndcg_at_10": 0.094, "precision_at_10": 0.14, "coverage": 0.25},
                "created_at": START - timedelta(days=2),
                "promoted_at": START - timedelta(days=2),
                "reason": "not worse than the champion: rmse 0.9320 vs 0.9510, ndcg_at_10 0.0940 vs 0.0810",
            },
            {
                "name": "movierec",
                "version": 3,
                "mlflow_run_id": "run3",
                "status": "rejected",
                "metrics": {"rmse": 0.961, "ndcg_at_10": 0.071, "precision_at_10": 0.10, "coverage": 0.31},
                "created_at": START - timedelta(days=1),
                "promoted_at": None,
                "reason": "worse than the champion: rmse 0.9610 vs champion 0.9320 (may rise by 0.005 at most)",
            },
        ],
    )


def seed_database(url: str) -> None:
    """Seed a migrated, empty database and commit."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            seed(connection)
    finally:
        engine.dispose()
