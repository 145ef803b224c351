"""What the worker publishes and the API serves: the live model pointer and the Redis key layout.

The worker writes a new model's artifact under `DATA_DIR/models/<version>/`, precomputes top-N lists
under keys of that version, then switches `movierec:model:live` to the new version in one SET and
announces it on `movierec:model:updates`. Readers always read the pointer first, so nobody ever sees
a mix of two versions; keys of old versions expire.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from redis import Redis

from services.settings import Settings

PREFIX = "movierec"
LIVE_MODEL_KEY = f"{PREFIX}:model:live"
MODEL_UPDATES_CHANNEL = f"{PREFIX}:model:updates"
RETRAIN_LOCK_KEY = f"{PREFIX}:lock:retrain"

PRECOMPUTED_TOP_N = 100
"""How many recommendations are stored per user and strategy; requests slice and filter this list."""

OLD_VERSION_TTL_SECONDS = 24 * 3600
"""How long the keys of a replaced version live on, for requests that read the pointer just before."""


@dataclass(frozen=True)
class LiveModel:
    """The model version the API serves."""

    version: str
    artifact_dir: str
    mlflow_run_id: str | None = None
    registry_version: int | None = None
    promoted_at: str | None = None

    def to_json(self) -> str:
        """Serialised form stored in Redis."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> LiveModel:
        """Inverse of `to_json`."""
        return cls(**json.loads(raw))


def models_dir(settings: Settings) -> Path:
    """Where serving artifacts live, one folder per version (shared by worker and API)."""
    return (settings.DATA_DIR / "models").resolve()


def artifact_dir(settings: Settings, version: str) -> Path:
    """The folder of one version's serving artifact."""
    return models_dir(settings) / version


def recommendations_key(version: str, user_id: int) -> str:
    """Hash of a user's top-N lists for one model version; one field per strategy (e.g. `hybrid`, `svd`).

    One key per user means a new rating invalidates every strategy's list with a single DEL.
    """
    return f"{PREFIX}:recs:{version}:{user_id}"


class Recommended(Protocol):
    """What a stored list holds of each movie."""

    @property
    def movie_id(self) -> int: ...

    @property
    def score(self) -> float: ...

    @property
    def explanation(self) -> str: ...


def encode_list(items: Iterable[Recommended]) -> bytes:
    """A ranked list as a field of a user's hash: compact JSON `[[movie_id, score, explanation], ...]`."""
    return orjson.dumps([[item.movie_id, round(item.score, 5), item.explanation] for item in items])


def decode_list(raw: bytes | str) -> list[list[Any]]:
    """Inverse of `encode_list`: the `[movie_id, score, explanation]` entries, as stored."""
    entries: list[list[Any]] = orjson.loads(raw)
    return entries


def read_live_model(client: Redis) -> LiveModel | None:
    """The live model pointer, or None before the first promotion."""
    raw = client.get(LIVE_MODEL_KEY)
    return LiveModel.from_json(raw) if raw else None


def publish_live_model(client: Redis, model: LiveModel) -> None:
    """Switch every reader to `model` in one atomic SET, then tell running API instances."""
    client.set(LIVE_MODEL_KEY, model.to_json())
    client.publish(MODEL_UPDATES_CHANNEL, model.version)
