"""deploy/docker/Dockerfile and .dockerignore: hadolint, checkov, and the rules we hold the image to."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest import BOOTSTRAP, DOCKERFILE, REPO, Tools

SHELL_SCRIPTS = [BOOTSTRAP, *sorted((REPO / "deploy/docker/postgres-init").glob("*.sh"))]


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, in its build stage."""

    keyword: str
    arguments: str
    stage: int


def _instructions() -> list[Instruction]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    stage = -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return found


def _final(instructions: list[Instruction]) -> list[Instruction]:
    last = max(instruction.stage for instruction in instructions)
    return [instruction for instruction in instructions if instruction.stage == last]


def test_hadolint(tools: Tools) -> None:
    result = tools.run([tools.hadolint, "--failure-threshold", "info", DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_dockerfile(tools: Tools) -> None:
    result = tools.run([tools.checkov, "--file", DOCKERFILE, "--framework", "dockerfile", "--output", "json"])
    report = json.loads(result.stdout)
    failed = [f"{check['check_id']} {check['check_name']}" for check in report["results"]["failed_checks"]]
    assert not failed, failed
    assert report["summary"]["passed"] > 0


def test_multi_stage_on_a_pinned_slim_base() -> None:
    froms = [instruction for instruction in _instructions() if instruction.keyword == "FROM"]
    assert len(froms) >= 2, "build in one stage, run in another"
    for instruction in froms:
        image = instruction.arguments.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image


def test_final_stage_runs_as_a_user_that_is_not_root() -> None:
    final = _final(_instructions())
    users = [instruction.arguments for instruction in final if instruction.keyword == "USER"]
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    last_user = max(index for index, instruction in enumerate(final) if instruction.keyword == "USER")
    assert all(instruction.keyword != "RUN" for instruction in final[last_user:]), "no RUN after USER"


def test_final_stage_has_a_health_check_and_the_movierec_entrypoint() -> None:
    final = _final(_instructions())
    keywords = [instruction.keyword for instruction in final]
    assert "HEALTHCHECK" in keywords
    entrypoint = next(instruction.arguments for instruction in final if instruction.keyword == "ENTRYPOINT")
    assert json.loads(entrypoint) == ["movierec"]


def test_final_stage_copies_only_the_venv_and_the_container_scripts() -> None:
    for instruction in _final(_instructions()):
        if instruction.keyword == "COPY":
            if instruction.arguments.startswith("--from="):
                assert instruction.arguments.split()[1:] == ["/opt/venv", "/opt/venv"]
            else:
                assert instruction.arguments.startswith("deploy/docker/"), instruction.arguments
        if instruction.keyword == "RUN":
            assert not re.search(r"build-essential|gcc|g\+\+|\bmake\b|-dev\b", instruction.arguments)


def test_no_remote_add_no_pip_cache_and_clean_apt_lists() -> None:
    for instruction in _instructions():
        assert instruction.keyword != "ADD", "use COPY; ADD fetches URLs and unpacks archives"
        if instruction.keyword == "RUN":
            for command in re.split(r"&&|;", instruction.arguments):
                if re.search(r"\bpip install\b", command):
                    assert "--no-cache-dir" in command, command
                if "apt-get install" in command:
                    assert "--no-install-recommends" in command
            if "apt-get update" in instruction.arguments:
                assert "rm -rf /var/lib/apt/lists/*" in instruction.arguments


def test_builder_installs_the_pinned_dependencies() -> None:
    runs = " ".join(instruction.arguments for instruction in _instructions() if instruction.keyword == "RUN")
    assert "pip install --no-cache-dir -c constraints.txt ." in runs
    assert "pip install --no-cache-dir --no-deps recbole==1.2.1" in runs


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a match on a folder covers its content."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        regex = fnmatch.translate(body).replace(".*", "[^/]*").replace(r"[^/]*[^/]*", ".*")
        if body.startswith("**/"):
            regex = f"(.*/)?{fnmatch.translate(body[3:])}"
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert (REPO / source).exists(), f"COPY {source}: no such file"
            assert not _ignored(source, patterns), f"COPY {source} is excluded by .dockerignore"
    assert not _ignored("ml/models/svd.py", patterns)
    assert not _ignored("db/migrations/env.py", patterns)
    for secret_or_bulk in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        ".venv-tools/bin/checkov",
        ".data/x",
        "tests/conftest.py",
        "ml/__pycache__/a.pyc",
    ):
        assert _ignored(secret_or_bulk, patterns), f"{secret_or_bulk} would be sent to the build"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda path: path.name)
def test_container_shell_scripts(tools: Tools, script: Path) -> None:
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    result = tools.run([tools.shellcheck, "--shell=sh", "--severity=style", script])
    assert result.returncode == 0, result.stdout
