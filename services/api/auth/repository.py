"""Queries on `api_key`."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import ApiKey


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this digest, revoked or not."""
        return self.session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()

    def get_by_id(self, key_id: int) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def list_by_prefix(self, prefix: str) -> Sequence[ApiKey]:
        return self.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix).order_by(ApiKey.id)).all()

    def list_all(self, *, include_revoked: bool = True) -> Sequence[ApiKey]:
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return self.session.scalars(query).all()

    def has_active_admin(self) -> bool:
        """Whether any unrevoked key has the admin scope."""
        query = select(func.count()).where(ApiKey.revoked_at.is_(None), ApiKey.scopes.any_() == "admin")
        return bool(self.session.scalar(query))

    def create(self, *, name: str, prefix: str, key_hash: str, scopes: Sequence[str]) -> ApiKey:
        key = ApiKey(name=name, prefix=prefix, key_hash=key_hash, scopes=list(scopes))
        self.session.add(key)
        self.session.flush()
        return key

    def revoke(self, key: ApiKey) -> None:
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)
            self.session.flush()

    def touch(self, key_ids: Collection[int]) -> None:
        """Record that these keys were used just now."""
        if key_ids:
            self.session.execute(
                update(ApiKey).where(ApiKey.id.in_(list(key_ids))).values(last_used_at=func.now())
            )
