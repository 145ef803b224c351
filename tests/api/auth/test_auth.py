from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ApiKey
from services.api.auth.ratelimit import seconds_until_allowed
from services.api.auth.service import ADMIN_KEY_FILE, KeyCache, Principal, api_key, cached_principal, hash_key
from services.api.errors import Unauthorized
from services.api.main import create_app
from tests.api.conftest import Keys, api_settings
from tests.conftest import free_port


class TestApiKeys:
    def test_a_missing_key_is_401(self, client: TestClient) -> None:
        response = client.get("/v1/movies/1")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("ApiKey")

    def test_an_unknown_key_is_401(self, client: TestClient) -> None:
        response = client.get(
            "/v1/movies/1", headers={"X-API-Key": "mr_not-a-key-of-ours-at-all-000000000000"}
        )
        assert response.status_code == 401

    def test_a_read_key_cannot_use_admin_operations(self, client: TestClient, keys: Keys) -> None:
        response = client.get("/v1/experiments", headers=keys.read)
        assert response.status_code == 403
        assert "admin" in response.json()["detail"]

    def test_a_write_key_cannot_read(self, client: TestClient, keys: Keys) -> None:
        assert client.get("/v1/movies/1", headers=keys.write).status_code == 403

    def test_admin_implies_every_scope(self, client: TestClient, keys: Keys) -> None:
        assert client.get("/v1/movies/1", headers=keys.admin).status_code == 200
        assert client.post("/v1/users", json={}, headers=keys.admin).status_code == 201

    def test_a_revoked_key_is_refused_at_once(
        self, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        # given: a key that was just used (so this instance has it cached)
        assert client.get("/v1/movies/1", headers=keys.read).status_code == 200
        key_id = db_session.scalars(
            select(ApiKey.id).where(ApiKey.key_hash == hash_key(keys.read["X-API-Key"]))
        ).one()
        # when
        revoked = client.delete(f"/v1/admin/api-keys/{key_id}", headers=keys.admin)
        # then
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        response = client.get("/v1/movies/1", headers=keys.read)
        assert response.status_code == 401
        assert response.json()["detail"] == "Unknown or revoked API key."

    def test_a_key_cannot_revoke_itself(self, client: TestClient, keys: Keys, db_session: Session) -> None:
        key_id = db_session.scalars(
            select(ApiKey.id).where(ApiKey.key_hash == hash_key(keys.admin["X-API-Key"]))
        ).one()
        assert client.delete(f"/v1/admin/api-keys/{key_id}", headers=keys.admin).status_code == 409

    def test_keys_are_created_with_a_secret_shown_once_and_stored_hashed(
        self, client: TestClient, keys: Keys, db_session: Session
    ) -> None:
        # when
        response = client.post(
            "/v1/admin/api-keys", json={"name": "tv-app", "scopes": ["read"]}, headers=keys.admin
        )
        # then
        assert response.status_code == 201
        body = response.json()
        secret = body["key"]
        assert secret.startswith("mr_") and body["prefix"] == secret[:11]
        stored = db_session.scalars(select(ApiKey).where(ApiKey.id == body["id"])).one()
        assert stored.key_hash == hash_key(secret) and secret not in (stored.prefix, stored.key_hash)
        assert client.get("/v1/movies/1", headers={"X-API-Key": secret}).status_code == 200
        listed = client.get("/v1/admin/api-keys", headers=keys.admin).json()
        assert "key" not in listed[0] and body["id"] in [k["id"] for k in listed]


class TestBootstrap:
    def test_the_first_start_creates_an_admin_key_in_a_private_file(
        self, db_session: Session, api_database_url: str, api_redis_url: str, tmp_path: Path
    ) -> None:
        # given: no admin key at all
        for key in db_session.scalars(select(ApiKey)):
            api_key.revoke(db_session, key)
        db_session.commit()
        settings = api_settings(api_database_url, api_redis_url, tmp_path)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        # when
        with TestClient(create_app(settings, session_factory=factory)) as client:
            secret = (tmp_path / ADMIN_KEY_FILE).read_text().strip()
            response = client.get("/v1/experiments", headers={"X-API-Key": secret})
        # then
        assert response.status_code == 200
        assert stat.S_IMODE((tmp_path / ADMIN_KEY_FILE).stat().st_mode) == 0o600
        # and a second start does not create another one
        with TestClient(create_app(settings, session_factory=factory)):
            pass
        assert (tmp_path / ADMIN_KEY_FILE).read_text().strip() == secret

    def test_the_bootstrap_key_can_come_from_the_environment(
        self, db_session: Session, api_database_url: str, api_redis_url: str, tmp_path: Path
    ) -> None:
        for key in db_session.scalars(select(ApiKey)):
            api_key.revoke(db_session, key)
        db_session.commit()
        secret = "mr_configured-by-the-operator-0123456789"
        settings = api_settings(api_database_url, api_redis_url, tmp_path, BOOTSTRAP_API_KEY=secret)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        with TestClient(create_app(settings, session_factory=factory)) as client:
            assert client.get("/v1/experiments", headers={"X-API-Key": secret}).status_code == 200
        assert not (tmp_path / ADMIN_KEY_FILE).exists()


class TestRateLimit:
    def test_over_the_limit_is_429_with_retry_after(
        self,
        db_session: Session,
        api_database_url: str,
        api_redis_url: str,
        api_data_dir: Path,
        keys: Keys,
        live_model: object,
    ) -> None:
        # given
        settings = api_settings(api_database_url, api_redis_url, api_data_dir, API_RATE_LIMIT_PER_MINUTE=3)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        with TestClient(create_app(settings, session_factory=factory)) as client:
            # when
            responses = [client.get("/v1/movies/1", headers=keys.read) for _ in range(4)]
            other_key = client.get("/v1/movies/1", headers=keys.read_write)
        # then
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
        limited = responses[3]
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["Retry-After"]) <= 120
        assert other_key.status_code == 200  # limits are per key

    def test_fails_open_without_redis(
        self, db_session: Session, api_database_url: str, api_data_dir: Path, keys: Keys
    ) -> None:
        settings = api_settings(
            api_database_url, f"redis://127.0.0.1:{free_port()}/0", api_data_dir, API_RATE_LIMIT_PER_MINUTE=1
        )
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        with TestClient(create_app(settings, session_factory=factory)) as client:
            assert [client.get("/v1/movies/1", headers=keys.read).status_code for _ in range(3)] == [200] * 3


@pytest.mark.parametrize(
    ("limit", "previous", "current", "elapsed", "expected"),
    [
        # Nothing before this window: its 3 requests still weigh 2/3 of a request after 20 s of the next.
        (3, 0, 3, 10.0, 70),
        # Half of the previous minute still counts, and one more request fits at once.
        (600, 600, 0, 30.0, 1),
        # At the limit: a tenth of a second frees one request.
        (600, 600, 300, 30.0, 1),
        # Twice over the limit: 33 s into the next window.
        (10, 0, 20, 59.0, 34),
    ],
)
def test_seconds_until_allowed(
    limit: int, previous: int, current: int, elapsed: float, expected: int
) -> None:
    assert seconds_until_allowed(limit, previous, current, elapsed) == expected


class TestRateLimitOnRecommendations:
    def test_the_cache_read_round_trip_also_counts_the_request(
        self,
        db_session: Session,
        api_database_url: str,
        api_redis_url: str,
        api_data_dir: Path,
        keys: Keys,
        live_model: object,
    ) -> None:
        settings = api_settings(api_database_url, api_redis_url, api_data_dir, API_RATE_LIMIT_PER_MINUTE=2)
        factory = sessionmaker(bind=db_session.connection(), join_transaction_mode="create_savepoint")
        with TestClient(create_app(settings, session_factory=factory)) as client:
            responses = [client.get("/v1/users/1/recommendations", headers=keys.read) for _ in range(2)]
            limited = client.get("/v1/users/1/recommendations?genre=no-such-genre", headers=keys.read)
        assert [r.status_code for r in responses] == [200, 200]
        assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["1", "0"]
        assert limited.status_code == 429  # refused requests count, and the limit comes first
        assert "Retry-After" in limited.headers


class TestKeyCache:
    SECRET = "mr_" + "k" * 40

    def expired_cache(self) -> KeyCache:
        cache = KeyCache(ttl=0.0)  # every entry is already past its TTL
        cache.put(hash_key(self.SECRET), Principal(1, "app", "mr_kkkk", frozenset({"read"})))
        time.sleep(0.001)
        return cache

    def test_one_request_rechecks_an_expired_key_while_the_others_keep_its_verdict(self) -> None:
        cache = self.expired_cache()
        first = cached_principal(cache, self.SECRET)
        others = [cached_principal(cache, self.SECRET) for _ in range(5)]
        assert first is None  # this one asks the database
        assert [p.key_id if p else None for p in others] == [1] * 5

    def test_the_recheck_is_claimed_again_once_the_key_is_stored(self) -> None:
        cache = self.expired_cache()
        assert cached_principal(cache, self.SECRET) is None
        cache.put(hash_key(self.SECRET), None)  # the database says: revoked
        time.sleep(0.001)
        assert cached_principal(cache, self.SECRET) is None  # expired again: a new recheck
        with pytest.raises(Unauthorized):
            cached_principal(cache, self.SECRET)  # meanwhile the revocation holds
