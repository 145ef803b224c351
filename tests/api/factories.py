"""Typed helpers that put rows and cache entries in place for API tests."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from db.models import AppUser, Rating
from services.live_model import recommendations_key


def create_user(session: Session, **overrides: Any) -> AppUser:
    user = AppUser(external_id=overrides.pop("external_id", f"user-{uuid4().hex[:8]}"), **overrides)
    session.add(user)
    session.flush()
    return user


def create_rating(session: Session, *, user_id: int, movie_id: int, rating: float = 4.0) -> Rating:
    row = Rating(user_id=user_id, movie_id=movie_id, rating=rating)
    session.add(row)
    session.flush()
    return row


def precompute(
    client: redis.Redis, *, version: str, user_id: int, strategy: str, items: list[tuple[int, float, str]]
) -> None:
    """What the worker writes for a user: one hash field per strategy."""
    client.hset(recommendations_key(version, user_id), strategy, json.dumps([list(item) for item in items]))


def create_experiment(
    client: TestClient,
    headers: dict[str, str],
    *,
    name: str | None = None,
    variants: list[dict[str, Any]] | None = None,
    salt: str | None = None,
    start: bool = True,
) -> dict[str, Any]:
    """An experiment made through the API (started unless told otherwise)."""
    body: dict[str, Any] = {
        "name": name or f"exp-{uuid4().hex[:8]}",
        "variants": variants
        or [
            {"name": "control", "weight": 50, "is_control": True, "config": {"strategy": "svd"}},
            {"name": "treatment", "weight": 50, "config": {"strategy": "hybrid"}},
        ],
    }
    if salt is not None:
        body["salt"] = salt
    response = client.post("/v1/experiments", json=body, headers=headers)
    assert response.status_code == 201, response.text
    experiment: dict[str, Any] = response.json()
    if start:
        response = client.post(f"/v1/experiments/{experiment['id']}/start", headers=headers)
        assert response.status_code == 200, response.text
        experiment = response.json()
    return experiment
