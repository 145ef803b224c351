"""docker-compose.yml: settings, health checks, start order, volumes, secrets and commands.

No Docker engine is needed: the file is parsed and checked against the code it runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import pytest

from services.settings import Settings
from tests.deploy.conftest import (
    BOOTSTRAP,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    PENDING_COMMANDS,
    REPO,
    MovierecCli,
    Tools,
)

APP_SERVICES = {"mlflow", "migrate", "api", "worker", "beat", "dashboard"}
LONG_RUNNING_APP_SERVICES = APP_SERVICES - {"migrate"}

# The settings class each process reads: the shared Settings, or a subclass with its own fields.
PROCESS_SETTINGS = {
    "api": ("services.settings", "Settings"),
    "worker": ("services.settings", "Settings"),
    "beat": ("services.settings", "Settings"),
    "migrate": ("services.settings", "Settings"),  # `movierec train --sync`
    "mlflow": ("services.settings", "Settings"),
    "dashboard": ("services.settings", "Settings"),
}
# Variables given to our image that are not movierec settings, and the program that reads each.
NON_SETTINGS_VARIABLES = {
    "MLFLOW_SERVER_ALLOWED_HOSTS": "the MLflow server",
    "MOVIEREC_API_KEY": "the dashboard (services/dashboard)",
}
PLACEHOLDER = "placeholder-0123456789abcdef"
# Official images read their own variables.
OFFICIAL_IMAGE_VARIABLES = {"postgres": ("POSTGRES_",), "redis": ()}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|CREDENTIAL")
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")
PORTS = {"api": ("API_PORT", 8000), "dashboard": ("DASHBOARD_PORT", 8501), "mlflow": ("MLFLOW_PORT", 5000)}


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "write environment as a mapping, not a list"
    return {str(key): str(value) for key, value in env.items()}


def _resolve(value: str) -> str:
    """Interpolate ${VAR:?...} with a placeholder and ${VAR:-default} with its default."""

    def replace(match: re.Match[str]) -> str:
        operator, argument = match.group(2), match.group(3)
        if operator in (":-", "-"):
            return argument
        return PLACEHOLDER

    return INTERPOLATION.sub(replace, value)


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


_SPEC_CHECK = """
import sys
import yaml
from compose_spec import PyCompose
# The parser knows neither YAML merge keys nor interpolation: give it the resolved document.
PyCompose.from_yaml(yaml.safe_dump(yaml.safe_load(sys.stdin.read()), sort_keys=False))
"""


def test_compose_file_follows_the_compose_specification(tools: Tools) -> None:
    resolved = INTERPOLATION.sub(lambda match: _resolve(match.group(0)), COMPOSE_FILE.read_text())
    result = tools.run([tools.python, "-c", _SPEC_CHECK], stdin=resolved, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(_services(compose)) == APP_SERVICES | {"postgres", "redis"}


def test_official_images_are_pinned_to_a_major_version(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert re.fullmatch(r"postgres:16(\.\d+)?(-[a-z]+)?", services["postgres"]["image"])
    assert re.fullmatch(r"redis:7(\.\d+)*(-[a-z]+)?", services["redis"]["image"])


def test_app_services_share_one_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        service = _services(compose)[name]
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile", name
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["image"] == _services(compose)["api"]["image"], name


def _settings_class(name: str) -> type[Settings]:
    module, attribute = PROCESS_SETTINGS[name]
    try:
        found = getattr(importlib.import_module(module), attribute)
    except ImportError:
        pytest.skip(f"{module} is not in this tree yet")
    assert issubclass(found, Settings)
    return found


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_variables_are_movierec_settings(compose: dict[str, Any], name: str) -> None:
    settings_class = _settings_class(name)
    for variable in _environment(_services(compose)[name]):
        if variable in settings_class.model_fields:
            continue
        assert variable in NON_SETTINGS_VARIABLES, (
            f"{name}: {variable} is not a field of {settings_class.__name__}"
        )


def test_non_settings_variables_are_read_by_their_program() -> None:
    dashboard = "".join(path.read_text() for path in (REPO / "services/dashboard").rglob("*.py"))
    assert 'os.environ.get("MOVIEREC_API_KEY")' in dashboard
    spec = importlib.util.find_spec("mlflow")
    assert spec is not None and spec.origin is not None
    mlflow_variables = Path(spec.origin).with_name("environment_variables.py").read_text()
    assert '"MLFLOW_SERVER_ALLOWED_HOSTS"' in mlflow_variables


@pytest.mark.parametrize("name", sorted(OFFICIAL_IMAGE_VARIABLES))
def test_official_image_variables_are_their_own(compose: dict[str, Any], name: str) -> None:
    prefixes = OFFICIAL_IMAGE_VARIABLES[name]
    for variable in _environment(_services(compose)[name]):
        assert variable.startswith(prefixes), f"{name}: {variable} is not a variable of the official image"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_settings_accept_the_environment(compose: dict[str, Any], name: str) -> None:
    settings_class = _settings_class(name)
    env = {key: _resolve(value) for key, value in _environment(_services(compose)[name]).items()}
    assert env["ENVIRONMENT"] == "production"
    # model_validate reads neither the process environment nor .env: only what compose passes.
    settings = settings_class.model_validate(
        {key: value for key, value in env.items() if key in settings_class.model_fields}
    )
    assert settings.DATABASE_URL is not None
    assert settings.DATABASE_URL.startswith(f"postgresql+psycopg://movierec:{PLACEHOLDER}@postgres:5432/")
    assert settings.REDIS_URL == "redis://redis:6379/0"
    assert settings.MLFLOW_TRACKING_URI == "http://mlflow:5000"
    assert str(settings.DATA_DIR) == "/data"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        if service.get("restart") == "no":
            continue
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        if name in LONG_RUNNING_APP_SERVICES:
            assert test == ["CMD", "python", "/usr/local/bin/movierec-healthcheck", name], name


def test_health_checks_probe_each_service() -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", REPO / "deploy/docker/healthcheck.py")
    assert spec is not None and spec.loader is not None
    healthcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(healthcheck)
    detect = healthcheck._detect
    assert detect([["/opt/venv/bin/python", "/opt/venv/bin/movierec", "serve", "api"]]) == "api"
    assert detect([["/sbin/docker-init", "--", "movierec", "serve", "beat"]]) == "beat"
    assert detect([["python", "-m", "celery", "-A", "services.worker.celery_app", "worker"]]) == "worker"
    assert detect([["/opt/venv/bin/mlflow", "server", "--port", "5000"]]) == "mlflow"
    assert detect([["/opt/venv/bin/streamlit", "run", "app.py"]]) == "dashboard"
    assert detect([["movierec", "db", "upgrade"]]) is None
    assert healthcheck._celery_node([["celery", "worker", "-n", "worker@%h"]]).startswith("worker@")
    with pytest.raises(ValueError, match="unknown service"):
        healthcheck.check("nonsense", [])


def test_dependencies_wait_for_the_right_condition(compose: dict[str, Any]) -> None:
    services = _services(compose)
    graph: dict[str, set[str]] = {}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with conditions"
        graph[name] = set(depends)
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            one_shot = services[target].get("restart") == "no"
            expected = "service_completed_successfully" if one_shot else "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {target}: expected {expected}"
            if not one_shot:
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no health check"
                )
    tuple(TopologicalSorter(graph).static_order())  # raises CycleError on a cycle


def test_start_order(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert set(services["migrate"]["depends_on"]) == {"postgres", "redis", "mlflow"}
    assert set(services["mlflow"]["depends_on"]) == {"postgres"}
    for name in ("api", "worker", "beat"):
        assert "migrate" in services[name]["depends_on"], f"{name} must wait for the migrations"
    assert "api" in services["dashboard"]["depends_on"]
    assert "mlflow" in services["worker"]["depends_on"], "the worker logs training runs to MLflow"


def test_volumes_are_named_and_shared_where_needed(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    assert {"pgdata", "redisdata", "models", "mlflow-artifacts"} <= declared
    used: dict[str, dict[str, str]] = {}
    for name, service in _services(compose).items():
        for spec in service.get("volumes", []):
            assert isinstance(spec, str) and ":" in spec, f"{name}: anonymous volume {spec!r}"
            source, target, *mode = spec.split(":")
            if source.startswith("."):
                assert mode == ["ro"], f"{name}: bind mounts must be read-only"
                assert (REPO / source).is_dir(), f"{name}: {source} does not exist"
                continue
            assert source in declared, f"{name}: volume {source} is not declared"
            used.setdefault(source, {})[name] = target
    assert set(used) == declared, f"declared but unused: {declared - set(used)}"
    # The worker writes serving artifacts under DATA_DIR/models; the API reads them from the same volume.
    for name in ("api", "worker", "migrate"):
        assert used["models"][name] == _environment(_services(compose)[name])["DATA_DIR"]
    assert used["pgdata"] == {"postgres": "/var/lib/postgresql/data"}
    mlflow_env = _environment(_services(compose)["mlflow"])
    assert used["mlflow-artifacts"] == {"mlflow": mlflow_env["MLFLOW_ARTIFACT_ROOT"]}


def test_postgres_creates_the_mlflow_database(compose: dict[str, Any]) -> None:
    mounts = _services(compose)["postgres"]["volumes"]
    init = next(spec for spec in mounts if spec.endswith(":/docker-entrypoint-initdb.d:ro"))
    scripts = sorted((REPO / init.split(":")[0]).glob("*.sh"))
    assert scripts and "CREATE DATABASE mlflow" in scripts[0].read_text()


def test_no_secret_has_a_value(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for variable, value in _environment(service).items():
            if SECRET_NAME.search(variable):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), (
                    f"{name}: {variable} must be ${{VAR:?...}}"
                )
            for match in re.finditer(r"://[^:/@]+:([^@]+)@", value):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", match.group(1)), (
                    f"{name}: password in {variable}"
                )


def test_env_example_lists_every_variable_and_no_secret() -> None:
    compose_text = (REPO / "docker-compose.yml").read_text()
    example = ENV_EXAMPLE.read_text()
    listed = dict(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", example, flags=re.MULTILINE))
    for match in INTERPOLATION.finditer(compose_text):
        variable, operator = match.group(1), match.group(2)
        assert variable in listed, f".env.example does not mention {variable}"
        if operator == ":?":
            assert re.search(rf"^{variable}=$", example, flags=re.MULTILINE), f"{variable} must be left empty"
    for variable, value in listed.items():
        if SECRET_NAME.search(variable):
            assert value == "", f".env.example gives {variable} a value"


def test_published_ports_match_the_settings(compose: dict[str, Any]) -> None:
    for name, (setting, port) in PORTS.items():
        service = _services(compose)[name]
        assert Settings.model_fields[setting].default == port
        assert _environment(service).get(setting, str(port)) == str(port)
        published = [str(spec).rsplit(":", 1)[-1] for spec in service["ports"]]
        assert published == [str(port)], name
    for name in set(_services(compose)) - set(PORTS):
        assert "ports" not in _services(compose)[name], f"{name} must not publish a port"


def test_every_service_has_resource_limits(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert {"cpus", "memory"} <= set(limits), f"{name} has no CPU and memory limits"


def test_beat_runs_once(compose: dict[str, Any]) -> None:
    beat = _services(compose)["beat"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert "ports" not in beat


@pytest.mark.parametrize("name", sorted(LONG_RUNNING_APP_SERVICES))
def test_service_commands_exist(compose: dict[str, Any], movierec_cli: MovierecCli, name: str) -> None:
    service = _services(compose)[name]
    assert "entrypoint" not in service, "the image's entrypoint is `movierec`"
    command = _command(service)
    assert command == ["serve", name]
    movierec_cli.require(tuple(command))


def test_migrate_runs_the_bootstrap(compose: dict[str, Any]) -> None:
    migrate = _services(compose)["migrate"]
    assert migrate["entrypoint"] == ["sh", "/usr/local/bin/movierec-bootstrap"]
    assert _command(migrate) == ["all"]
    assert migrate["restart"] == "no"


def _bootstrap_invocations() -> list[list[str]]:
    """The arguments of every `movierec ...` line of bootstrap.sh."""
    lines = (line.strip() for line in BOOTSTRAP.read_text().splitlines())
    return [shlex.split(line)[1:] for line in lines if line.startswith("movierec ")]


@pytest.mark.parametrize("argv", _bootstrap_invocations(), ids=" ".join)
def test_bootstrap_commands_exist(movierec_cli: MovierecCli, argv: list[str]) -> None:
    positional = []
    for word in argv:
        if word.startswith("-"):
            break
        positional.append(word)
    # The longest prefix that is a command: `data load ml-100k` is `data load` with an argument.
    command = tuple(positional)
    for length in range(len(positional), 0, -1):
        command = tuple(positional[:length])
        if command in PENDING_COMMANDS or movierec_cli.help(command).exit_code == 0:
            break
    movierec_cli.require(command, tuple(word for word in argv if word.startswith("--")))
