"""Run several long-lived child processes; stop them all together, leaving no orphans."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

logger = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """Linux: SIGTERM this child if the supervisor dies, even by SIGKILL."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class ServiceSpec:
    """A child process: its name, command line and extra environment."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] | None = None
    oneshot: bool = False
    """A job that runs once (seeding, say): its exit does not stop the others."""


class Supervisor:
    """Starts children, watches them, and stops all of them on the first signal or exit.

    Args:
        log_dir: each child's stdout and stderr go to `log_dir/NAME.log`.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.oneshots: set[str] = set()
        self._stopping = False

    def log_path(self, name: str) -> Path:
        """Where the child `name` writes its output."""
        return self.log_dir / f"{name}.log"

    def start(self, spec: ServiceSpec) -> subprocess.Popen[bytes]:
        """Start one child with its output in its log file."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(spec.name).open("ab")
        env = {**os.environ, **(spec.env or {})}
        process = subprocess.Popen(
            list(spec.command), stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
        log.close()
        self.children[spec.name] = process
        if spec.oneshot:
            self.oneshots.add(spec.name)
        logger.info("started %s (pid %d), log: %s", spec.name, process.pid, self.log_path(spec.name))
        return process

    def _handle_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self._stopping:
            logger.info("received %s, stopping", signal.Signals(signum).name)
        self._stopping = True

    def wait(self) -> int:
        """Block until a signal arrives or a child exits; then stop everything.

        Returns:
            0 after a signal, otherwise the exit code of the child that stopped first.
        """
        previous = {sig: signal.signal(sig, self._handle_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        exit_code = 0
        try:
            while not self._stopping:
                for name, process in list(self.children.items()):
                    code = process.poll()
                    if code is not None and name in self.oneshots:
                        log = logger.info if code == 0 else logger.warning
                        log("%s finished with code %d; see %s/%s.log", name, code, self.log_dir, name)
                        del self.children[name]
                        continue
                    if code is not None:
                        logger.error("%s exited with code %d; see %s/%s.log", name, code, self.log_dir, name)
                        exit_code = code or 1
                        self._stopping = True
                        break
                time.sleep(0.2)
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return exit_code

    def stop_all(self, timeout: float = 20.0) -> None:
        """SIGTERM every child, wait, then SIGKILL whatever is left."""
        for process in self.children.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        deadline = time.monotonic() + timeout
        for name, process in self.children.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in time; killing it", name)
                process.kill()
                process.wait()
        self.children.clear()
