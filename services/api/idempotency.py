"""`Idempotency-Key` for POST requests: a retried request gets the first one's response, once stored.

The key is claimed with an INSERT in the request's own transaction, and the response is stored in
the same transaction before it commits. A concurrent retry blocks on the key's row until the first
request finishes, then replays its response; if the first request failed, its claim was rolled
back and the retry runs as if it were the first. Keys are scoped to the API key that sent them and
are forgotten after `API_IDEMPOTENCY_TTL`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import IdempotencyKey
from services.api.auth.service import Principal
from services.api.errors import Unprocessable

REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (a UUID is best). A retry with the same key and body gets the "
        "first response again instead of repeating the write; it is remembered for 24 hours.",
        examples=["4f1c9e0a-5b7d-4c2e-9a8b-1d2e3f405162"],
    ),
]


class IdempotencyKeyReused(Unprocessable):
    title = "Idempotency key reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used for a different request; use a new key.")


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored response to a key."""

    status_code: int
    body: Any


def fingerprint(method: str, path: str, payload: Any) -> str:
    """A digest of what a request asks for (whitespace and key order of the body do not matter)."""
    canonical = json.dumps([method, path, jsonable_encoder(payload)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, *, api_key_id: int, key: str, request_hash: str, ttl: timedelta) -> bool:
        """Take the key (new, or expired); False if a live entry holds it (waits for its transaction)."""
        values = insert(IdempotencyKey).values(
            api_key_id=api_key_id, key=key, request_hash=request_hash, status_code=0, response=None
        )
        statement = values.on_conflict_do_update(
            index_elements=[IdempotencyKey.api_key_id, IdempotencyKey.key],
            set_={
                "request_hash": values.excluded.request_hash,
                "status_code": 0,
                "response": None,
                "created_at": func.now(),
            },
            where=IdempotencyKey.created_at < func.now() - ttl,
        ).returning(IdempotencyKey.key)
        return self.session.execute(statement).first() is not None

    def get(self, *, api_key_id: int, key: str) -> IdempotencyKey | None:
        query = select(IdempotencyKey).where(
            IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key == key
        )
        return self.session.scalars(query.execution_options(populate_existing=True)).one_or_none()

    def store(self, *, api_key_id: int, key: str, status_code: int, response: Any) -> None:
        self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key == key)
            .values(status_code=status_code, response=response)
        )

    def delete_expired(self, ttl: timedelta) -> int:
        result = self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < func.now() - ttl)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def run_idempotent(
    session: Session,
    *,
    request: Request,
    principal: Principal,
    key: str | None,
    payload: Any,
    ttl: timedelta,
    action: Callable[[], tuple[int, Any]],
) -> JSONResponse:
    """Run `action` (returning status and body) once per idempotency key; replay it to retries.

    Raises:
        IdempotencyKeyReused: The key was used with a different method, path or body.
    """
    if key is None:
        status_code, body = action()
        return JSONResponse(jsonable_encoder(body), status_code=status_code)
    repository = IdempotencyRepository(session)
    request_hash = fingerprint(request.method, request.url.path, payload)
    if not repository.claim(api_key_id=principal.key_id, key=key, request_hash=request_hash, ttl=ttl):
        stored = repository.get(api_key_id=principal.key_id, key=key)
        if stored is not None:
            if stored.request_hash != request_hash:
                raise IdempotencyKeyReused()
            return JSONResponse(
                stored.response, status_code=stored.status_code, headers={REPLAYED_HEADER: "true"}
            )
    status_code, body = action()
    content = jsonable_encoder(body)
    repository.store(api_key_id=principal.key_id, key=key, status_code=status_code, response=content)
    return JSONResponse(content, status_code=status_code)
