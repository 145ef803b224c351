"""Container health check for the movierec image: exit 0 when the service in this container is healthy.

Usage: `python movierec-healthcheck [api|dashboard|mlflow|worker|beat]`. Without an argument the
service is recognised from the processes running in the container, so one HEALTHCHECK line in the
Dockerfile serves every command; a container running something else (a one-shot `db upgrade`) is
reported healthy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

SERVICES = ("api", "dashboard", "mlflow", "worker", "beat")
DEFAULT_CELERY_APP = "services.worker.celery_app"
TIMEOUT_SECONDS = 8


def _command_lines() -> list[list[str]]:
    """The argument vectors of every process visible in this container."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found.append([part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")])
    return found


def _detect(command_lines: list[list[str]]) -> str | None:
    """Which service these processes are, or None for anything else."""
    for argv in command_lines:
        words = [Path(word).name for word in argv]
        if "serve" in words:
            position = words.index("serve")
            if position + 1 < len(words) and words[position + 1] in SERVICES:
                return words[position + 1]
        if "celery" in words or any(word.startswith("celery") for word in words[:2]):
            if "worker" in words:
                return "worker"
            if "beat" in words:
                return "beat"
        if "uvicorn" in words and "mlflow" not in " ".join(argv):
            return "api"
        if "streamlit" in words:
            return "dashboard"
        if "mlflow" in words and "server" in words:
            return "mlflow"
    return None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _option(command_lines: list[list[str]], short: str, long: str) -> str | None:
    """The value of a `-X value`, `--long value` or `--long=value` option of any process."""
    for argv in command_lines:
        for index, word in enumerate(argv):
            if word in (short, long) and index + 1 < len(argv):
                return argv[index + 1]
            if word.startswith(f"{long}="):
                return word.split("=", 1)[1]
    return None


def _celery_node(command_lines: list[list[str]]) -> str:
    """The worker's node name (`-n`, with `%h` expanded), else Celery's default `celery@HOSTNAME`."""
    host = socket.gethostname()
    name = _option(command_lines, "-n", "--hostname") or "celery@%h"
    return name.replace("%h", host).replace("%n", host.split(".")[0])


def _worker_ok(command_lines: list[list[str]]) -> bool:
    """The worker on this host answers a Celery ping through the broker."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        _option(command_lines, "-A", "--app") or DEFAULT_CELERY_APP,
        "inspect",
        "ping",
        "--destination",
        _celery_node(command_lines),
        "--timeout",
        str(TIMEOUT_SECONDS - 3),
    ]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_SECONDS + 5, check=False)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def _redis_ok() -> bool:
    """Beat has no port of its own: it is healthy while it runs and its broker answers."""
    import redis

    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    try:
        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS)
        return bool(client.ping())
    except redis.RedisError:
        return False


def check(service: str, command_lines: list[list[str]]) -> bool:
    """Whether `service` is healthy."""
    if service == "api":
        return _http_ok(f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}/ready")
    if service == "dashboard":
        return _http_ok(f"http://127.0.0.1:{os.environ.get('DASHBOARD_PORT', '8501')}/_stcore/health")
    if service == "mlflow":
        return _http_ok(f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}/health")
    if service == "worker":
        return _worker_ok(command_lines)
    if service == "beat":
        return _redis_ok()
    raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")


def main(argv: list[str]) -> int:
    """Exit code for Docker: 0 healthy, 1 unhealthy."""
    command_lines = _command_lines()
    service = argv[0] if argv else _detect(command_lines)
    if service is None:
        return 0
    healthy = check(service, command_lines)
    if not healthy:
        sys.stderr.write(f"movierec {service} is not healthy\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
