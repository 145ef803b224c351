"""API keys: creation, revocation, verification (cached in-process) and the first admin key.

A key is `mr_` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 digest is
stored, with the first 11 characters (`mr_` and 8 more) as a prefix people can recognise it by.
Scopes: `read`, `write`, `admin`; `admin` implies the other two.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.models import API_KEY_SCOPES, ApiKey
from services.api.auth.repository import ApiKeyRepository
from services.api.errors import Conflict, DatabaseUnavailable, NotFound, Unauthorized, Unprocessable
from services.live_model import PREFIX

logger = logging.getLogger(__name__)

KEY_PREFIX = "mr_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8
REVOCATIONS_CHANNEL = f"{PREFIX}:apikeys:revoked"
"""Digests of revoked keys are published here, so every API instance forgets them at once."""
ADMIN_KEY_FILE = "admin-api-key"
BOOTSTRAP_KEY_NAME = "bootstrap-admin"
# Serialises the first-admin-key check of API processes starting together.
_BOOTSTRAP_LOCK_ID = 0x6D6F7669  # "movi"
# A key seen in the last `ttl` seconds is trusted without the database; an older entry is still
# used while the database is unreachable, for at most this long.
_STALE_FOR_SECONDS = 3600.0
_REFRESH_CLAIM_SECONDS = 2.0


def generate_key() -> str:
    """A new random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256 digest in hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The part of a key shown to people to identify it."""
    return key[:PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class Principal:
    """The API key a request was made with."""

    key_id: int
    name: str
    prefix: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Whether the key may do what `scope` covers (`admin` covers everything)."""
        return "admin" in self.scopes or scope in self.scopes


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A key as created: the only time its secret is known."""

    key_id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    secret: str


def normalise_scopes(scopes: Iterable[str]) -> list[str]:
    """Distinct known scopes in a fixed order.

    Raises:
        Unprocessable: A scope is unknown, or there is none.
    """
    wanted = {scope.strip().lower() for scope in scopes if scope.strip()}
    unknown = wanted - set(API_KEY_SCOPES)
    if unknown:
        raise Unprocessable(f"Unknown scopes {sorted(unknown)}; known: {', '.join(API_KEY_SCOPES)}.")
    if not wanted:
        raise Unprocessable(f"A key needs at least one scope: {', '.join(API_KEY_SCOPES)}.")
    return [scope for scope in API_KEY_SCOPES if scope in wanted]


def principal_of(key: ApiKey) -> Principal:
    return Principal(key.id, key.name, key.prefix, frozenset(key.scopes))


class KeyCache:
    """Verified keys by digest, with the time they were checked; also which keys were used.

    Args:
        ttl: Seconds an entry is trusted without asking the database again.
        max_entries: The cache is emptied when it grows past this (keys are few; guessers are many).
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal | None, float]] = {}
        self._refreshing: dict[str, float] = {}
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[Principal | None, bool] | None:
        """(principal or None for an unknown key, whether the entry is fresh), or None if absent."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, checked_at = entry
        age = time.monotonic() - checked_at
        if age > _STALE_FOR_SECONDS:
            return None
        return principal, age <= self.ttl

    def put(self, digest: str, principal: Principal | None) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = (principal, time.monotonic())
        self._refreshing.pop(digest, None)

    def claim_refresh(self, digest: str) -> bool:
        """Whether the caller should re-check an expired entry: True for one caller at a time (for
        `_REFRESH_CLAIM_SECONDS`, in case it fails); the others keep using the entry meanwhile, so a
        busy key costs one database query per TTL, not one per request in flight."""
        now = time.monotonic()
        with self._lock:
            claimed_at = self._refreshing.get(digest)
            if claimed_at is not None and now - claimed_at < _REFRESH_CLAIM_SECONDS:
                return False
            self._refreshing[digest] = now
            return True

    def forget(self, digest: str) -> None:
        """Drop one key (it was revoked)."""
        self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()

    def mark_used(self, key_id: int) -> None:
        if key_id not in self._used:
            with self._lock:
                self._used.add(key_id)

    def take_used(self) -> set[int]:
        """Keys used since the last call."""
        with self._lock:
            used, self._used = self._used, set()
        return used


class ApiKeyService:
    def create(
        self, session: Session, *, name: str, scopes: Iterable[str], secret: str | None = None
    ) -> CreatedKey:
        """Create a key; the returned secret is not stored anywhere.

        Raises:
            Unprocessable: Unknown scopes, an empty name, or a secret too short to be safe.
        """
        name = name.strip()
        if not name or len(name) > 100:
            raise Unprocessable("A key name needs 1 to 100 characters.")
        scope_list = normalise_scopes(scopes)
        secret = secret or generate_key()
        if len(secret) < 20:
            raise Unprocessable("An API key needs at least 20 characters.")
        key = ApiKeyRepository(session).create(
            name=name, prefix=key_prefix(secret), key_hash=hash_key(secret), scopes=scope_list
        )
        return CreatedKey(key.id, key.name, key.prefix, tuple(key.scopes), secret)

    def get_by_id_or_prefix(self, session: Session, key_id_or_prefix: str | int) -> ApiKey:
        """The key with this id, or the only key with this prefix.

        Raises:
            NotFound: No such key.
            Conflict: Several keys share the prefix.
        """
        repository = ApiKeyRepository(session)
        text = str(key_id_or_prefix).strip()
        if text.isdigit():
            key = repository.get_by_id(int(text)) if int(text) < 2**31 else None
            if key is None:
                raise NotFound(f"No API key with id {text}.")
            return key
        found = repository.list_by_prefix(key_prefix(text))
        if not found:
            raise NotFound(f"No API key with prefix {text!r}.")
        if len(found) > 1:
            raise Conflict(f"{len(found)} keys share the prefix {text!r}; use the key id.")
        return found[0]

    def revoke(self, session: Session, key: ApiKey) -> ApiKey:
        """Revoke a key (idempotent)."""
        ApiKeyRepository(session).revoke(key)
        return key

    def list_keys(self, session: Session, *, include_revoked: bool = True) -> Sequence[ApiKey]:
        return ApiKeyRepository(session).list_all(include_revoked=include_revoked)

    def lookup(self, session: Session, secret: str) -> Principal | None:
        """The unrevoked key with this secret, None if unknown or revoked."""
        key = ApiKeyRepository(session).get_by_hash(hash_key(secret))
        if key is None or key.revoked_at is not None:
            return None
        return principal_of(key)

    def ensure_admin_key(
        self, session: Session, *, data_dir: Path, bootstrap_key: str | None
    ) -> CreatedKey | None:
        """Create the first admin key if no unrevoked admin key exists.

        The key is `bootstrap_key` if given, else a new random one written to
        `data_dir/admin-api-key` (mode 0600) before the transaction commits.

        Returns:
            The created key, None if an admin key already existed.
        """
        session.execute(select(func.pg_advisory_xact_lock(_BOOTSTRAP_LOCK_ID)))
        repository = ApiKeyRepository(session)
        if repository.has_active_admin():
            return None
        if bootstrap_key and repository.get_by_hash(hash_key(bootstrap_key)) is not None:
            raise Conflict("BOOTSTRAP_API_KEY was revoked; set another one or create a key with the CLI.")
        created = self.create(session, name=BOOTSTRAP_KEY_NAME, scopes=["admin"], secret=bootstrap_key)
        if bootstrap_key is None:
            write_secret_file(data_dir / ADMIN_KEY_FILE, created.secret)
        return created


api_key = ApiKeyService()


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    path.chmod(0o600)


def announce_revocation(client: Redis, key_hash: str) -> None:
    """Tell running API instances to forget a revoked key now rather than within seconds."""
    try:
        client.publish(REVOCATIONS_CHANNEL, key_hash)
    except (RedisError, OSError) as exc:
        logger.warning("could not announce the revocation (%s); instances forget it within seconds", exc)


def cached_principal(cache: KeyCache, secret: str | None) -> Principal | None:
    """The principal of a key verified in the last seconds, without any I/O; None if the database
    must be asked. When an entry expires, one request asks the database and the others in flight
    keep the previous verdict until it answers (a revocation is also announced to every instance
    at once, see `announce_revocation`).

    Raises:
        Unauthorized: No key, or a key known (recently) to be unknown or revoked.
    """
    if not secret:
        raise Unauthorized("This operation needs an API key in the X-API-Key header.")
    if len(secret) > 200:
        raise Unauthorized("Unknown or revoked API key.")
    digest = hash_key(secret)
    cached = cache.get(digest)
    if cached is None:
        return None
    principal, fresh = cached
    if not fresh and cache.claim_refresh(digest):
        return None  # this request re-checks the key; requests meanwhile keep the cached verdict
    if principal is None:
        raise Unauthorized("Unknown or revoked API key.")
    cache.mark_used(principal.key_id)
    return principal


def authenticate(cache: KeyCache, open_session: Callable[[], Session], secret: str | None) -> Principal:
    """The principal of a request's `X-API-Key`, asking the database unless recently verified.

    Args:
        cache: Verified keys of this process.
        open_session: Callable returning a new `Session` (the app's session factory).
        secret: The header's value.

    Raises:
        Unauthorized: No key, or an unknown or revoked one.
        DatabaseUnavailable: The key is not cached and the database is unreachable.
    """
    fresh = cached_principal(cache, secret)
    if fresh is not None:
        return fresh
    assert secret is not None
    digest = hash_key(secret)
    cached = cache.get(digest)
    try:
        with open_session() as session:
            principal = api_key.lookup(session, secret)
    except DBAPIError as exc:
        if cached is None:
            raise DatabaseUnavailable() from exc
        logger.warning("database unreachable; trusting the cached verdict on key %s", key_prefix(secret))
        principal = cached[0]
    else:
        cache.put(digest, principal)
    if principal is None:
        raise Unauthorized("Unknown or revoked API key.")
    cache.mark_used(principal.key_id)
    return principal
