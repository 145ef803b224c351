import socket
from pathlib import Path

import psycopg
import pytest
import redis

from services.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServerError
from tests.conftest import free_port


class TestEmbeddedPostgres:
    def test_data_survives_a_restart_and_a_second_start_reuses_the_server(self, tmp_path: Path) -> None:
        server = EmbeddedPostgres(tmp_path / "pg" / "data", free_port())
        dsn = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
        try:
            assert server.start() is True
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE kept (value text)")
                conn.execute("INSERT INTO kept VALUES ('still here')")
            # a second handle on the same data directory reuses the running server
            assert EmbeddedPostgres(server.data_dir, server.port).start() is False
            # when
            server.stop()
            assert server.running_pid() is None
            assert server.start() is True
            # then
            with psycopg.connect(dsn) as conn:
                assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
        finally:
            server.stop()

    def test_a_port_taken_by_another_program_is_a_clear_error(self, tmp_path: Path) -> None:
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            server = EmbeddedPostgres(tmp_path / "pg" / "data", other.getsockname()[1])
            with pytest.raises(EmbeddedServerError, match="taken by another program"):
                server.start()


class TestEmbeddedRedis:
    def test_data_survives_a_restart(self, tmp_path: Path) -> None:
        server = EmbeddedRedis(tmp_path / "redis", free_port())
        try:
            assert server.start() is True
            client = redis.Redis.from_url(server.url)
            client.set("kept", "still here")
            client.close()
            # when
            server.stop()
            assert server.start() is True
            # then
            client = redis.Redis.from_url(server.url)
            assert client.get("kept") == b"still here"
            client.close()
        finally:
            server.stop()
