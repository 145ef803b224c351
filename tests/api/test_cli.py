"""The functions behind `movierec apikey create|list|revoke`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import typer
from sqlalchemy import select

from db.migrate import upgrade
from db.models import ApiKey
from db.session import create_db_engine
from services.api.auth.service import REVOCATIONS_CHANNEL, hash_key
from services.api.cli import apikey_create, apikey_list, apikey_revoke
from services.settings import get_settings


@pytest.fixture
def cli_env(scratch_database_url: str, api_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    upgrade(scratch_database_url)
    monkeypatch.setenv("DATABASE_URL", scratch_database_url)
    monkeypatch.setenv("REDIS_URL", api_redis_url)
    get_settings.cache_clear()
    get_settings.cache_clear()
    yield scratch_database_url
    get_settings.cache_clear()
    get_settings.cache_clear()


def test_create_list_and_revoke(
    cli_env: str, capsys: pytest.CaptureFixture[str], api_redis: redis.Redis
) -> None:
    # when
    apikey_create("android-app", ["read", "write"])
    secret = capsys.readouterr().out.strip()
    apikey_list()
    listed = capsys.readouterr().out
    subscriber = api_redis.pubsub()
    subscriber.subscribe(REVOCATIONS_CHANNEL)
    apikey_revoke(secret[:11])
    # then
    assert secret.startswith("mr_") and len(secret) > 40
    assert "android-app" in listed and secret[:11] in listed and secret not in listed
    engine = create_db_engine(cli_env, "test")
    with engine.connect() as connection:
        key = connection.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).one()
    engine.dispose()
    assert key.scopes == ["read", "write"] and key.revoked_at is not None
    messages = [subscriber.get_message(timeout=1) for _ in range(2)]
    assert any(m and m["type"] == "message" and m["data"] == hash_key(secret).encode() for m in messages)
    subscriber.close()


def test_unknown_scopes_and_keys_are_errors(cli_env: str) -> None:
    with pytest.raises(typer.Exit) as created:
        apikey_create("bad", ["superuser"])
    assert created.value.exit_code == 2
    with pytest.raises(typer.Exit):
        apikey_revoke("mr_nothere")
