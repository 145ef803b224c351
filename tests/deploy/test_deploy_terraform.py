"""deploy/terraform: formatting, checkov, references and the security properties we rely on.

`terraform validate` needs the AWS provider, which only the Terraform registry serves; where it
cannot be installed the test says so and is skipped. The reference checks below catch what
validate would catch without a provider: undeclared variables, locals, resources and data sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import TERRAFORM_DIR, MovierecCli, Tools

TIERS = ("api", "worker", "beat", "ops")
REFERENCE = re.compile(r"(?<![\w.])((?:data\.)?(?:aws|random)_[a-z0-9_]+)\.([a-z0-9_]+)")
SKIP_COMMENT = re.compile(r"#checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def _blocks(files: dict[str, dict[str, Any]], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for parsed in files.values():
        for entry in parsed.get(kind, []):
            yield from entry.items()


def _resources(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`type.name` -> body of every resource."""
    found = {}
    for kind, named in _blocks(files, "resource"):
        for name, body in named.items():
            found[f"{kind}.{name}"] = body
    return found


def _data_sources(files: dict[str, dict[str, Any]]) -> set[str]:
    return {f"data.{kind}.{name}" for kind, named in _blocks(files, "data") for name in named}


def _variables(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return dict(_blocks(files, "variable"))


def _locals(files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for parsed in files.values():
        for entry in parsed.get("locals", []):
            found.update(entry)
    return found


def _source() -> str:
    return "\n".join(path.read_text() for path in sorted(TERRAFORM_DIR.glob("*.tf")))


def _first(value: Any) -> Any:
    """python-hcl2 wraps nested blocks in lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------


def test_terraform_fmt(tools: Tools) -> None:
    result = tools.run([tools.terraform, "version"])
    assert result.stdout.startswith("Terraform v"), result.stdout
    result = tools.run([tools.terraform, "fmt", "-check", "-recursive", "-diff", TERRAFORM_DIR])
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive deploy/terraform`:\n{result.stdout}{result.stderr}"
    )


def test_checkov_terraform(tools: Tools) -> None:
    result = tools.run(
        [tools.checkov, "--directory", TERRAFORM_DIR, "--framework", "terraform", "--output", "json"],
        timeout=300,
    )
    report = json.loads(result.stdout)
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range'][0]}) {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 300
    skipped = report["results"]["skipped_checks"]
    assert all(check["check_result"].get("suppress_comment", "").strip() for check in skipped), (
        "every skip needs a reason"
    )


def test_every_checkov_skip_gives_a_reason() -> None:
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        for match in SKIP_COMMENT.finditer(path.read_text()):
            reason = (match.group(2) or "").strip()
            assert len(reason) >= 20, f"{path.name}: {match.group(1)} is skipped without a reason"


# ---------------------------------------------------------------------------------------------
# What `terraform validate` would check without a provider
# ---------------------------------------------------------------------------------------------


def test_versions_are_pinned(terraform_files: dict[str, dict[str, Any]]) -> None:
    terraform = _first(terraform_files["versions.tf"]["terraform"])
    assert re.fullmatch(r">= ?1\.\d+\.\d+, ?< ?2\.0\.0", terraform["required_version"])
    providers = _first(terraform["required_providers"])
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert providers["aws"]["version"].startswith("~> ")
    assert providers["random"]["version"].startswith("~> ")


def test_references_are_declared(terraform_files: dict[str, dict[str, Any]]) -> None:
    source = _source() + (TERRAFORM_DIR / "user_data.sh.tftpl").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    variables = set(_variables(terraform_files))
    local_names = set(_locals(terraform_files))
    resources = set(_resources(terraform_files))
    data = _data_sources(terraform_files)
    for name in set(re.findall(r"\bvar\.([a-z0-9_]+)", code)):
        assert name in variables, f"var.{name} is not declared"
    for name in set(re.findall(r"\blocal\.([a-z0-9_]+)", code)):
        assert name in local_names, f"local.{name} is not declared"
    for kind, name in set(REFERENCE.findall(code)):
        if kind.startswith("data."):
            assert f"{kind}.{name}" in data, f"{kind}.{name} is not declared"
        elif f"{kind}.{name}" not in resources:
            # `resource "aws_x" "name"` headers and provider arguments such as aws_kms_key.main.arn
            assert re.search(rf'resource "{kind}" "{name}"', code), f"{kind}.{name} is not declared"
    unused = {name for name in variables if f"var.{name}" not in code}
    assert not unused, f"declared but never used: {unused}"


def test_variables_are_documented_and_typed(terraform_files: dict[str, dict[str, Any]]) -> None:
    variables = _variables(terraform_files)
    assert len(variables) > 20
    for name, body in variables.items():
        assert len(body.get("description", "")) > 10, f"variable {name} needs a description"
        assert "type" in body, f"variable {name} needs a type"
    validated = {name for name, body in variables.items() if "validation" in body}
    for name in ("image", "acm_certificate_arn", "domain_name", "environment", "db_backup_retention_days"):
        assert name in validated, f"variable {name} needs a validation block"


def test_outputs_are_documented_and_leak_no_secret(terraform_files: dict[str, dict[str, Any]]) -> None:
    outputs = dict(_blocks(terraform_files, "output"))
    assert {"alb_dns_name", "rds_endpoint", "database_url_parameter"} <= set(outputs)
    for name, body in outputs.items():
        assert len(body.get("description", "")) > 10, f"output {name} needs a description"
        value = json.dumps(body["value"])
        assert not re.search(r"random_password|\.password\b|\.auth_token\b|secret_string|\.value\b", value), (
            name
        )


def test_tfvars_example_sets_every_required_variable(terraform_files: dict[str, dict[str, Any]]) -> None:
    variables = _variables(terraform_files)
    example = (TERRAFORM_DIR / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^#? ?([a-z0-9_]+)\s*=", example, flags=re.MULTILINE))
    assert assigned <= set(variables), f"unknown variables in the example: {assigned - set(variables)}"
    required = {name for name, body in variables.items() if "default" not in body}
    uncommented = set(re.findall(r"^([a-z0-9_]+)\s*=", example, flags=re.MULTILINE))
    assert required <= uncommented, f"required variables missing from the example: {required - uncommented}"


# ---------------------------------------------------------------------------------------------
# Security and availability properties
# ---------------------------------------------------------------------------------------------


def test_tiers_and_exactly_one_beat(terraform_files: dict[str, dict[str, Any]]) -> None:
    tiers = _locals(terraform_files)["tiers"]
    assert set(tiers) == set(TIERS)
    assert tiers["beat"]["min_size"] == 1 and tiers["beat"]["max_size"] == 1
    assert tiers["ops"]["min_size"] == 1 and tiers["ops"]["max_size"] == 1
    group = _resources(terraform_files)["aws_autoscaling_group.tier"]
    assert group["min_size"] == "${each.value.min_size}" and group["max_size"] == "${each.value.max_size}"
    refresh = _first(_first(group["instance_refresh"])["preferences"])
    assert refresh["max_healthy_percentage"] == 100, "a refresh must never run two beats at once"


def test_instances_require_imdsv2_and_encrypt_their_disks(terraform_files: dict[str, dict[str, Any]]) -> None:
    template = _resources(terraform_files)["aws_launch_template.tier"]
    metadata = _first(template["metadata_options"])
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1
    ebs = _first(_first(template["block_device_mappings"])["ebs"])
    assert ebs["encrypted"] is True


def test_api_sits_behind_https_with_ready_checks(terraform_files: dict[str, dict[str, Any]]) -> None:
    resources = _resources(terraform_files)
    health = _first(resources["aws_lb_target_group.api"]["health_check"])
    assert health["path"] == "/ready"
    https = resources["aws_lb_listener.https"]
    assert https["protocol"] == "HTTPS" and https["certificate_arn"] == "${var.acm_certificate_arn}"
    assert https["ssl_policy"].startswith("ELBSecurityPolicy-TLS13")
    redirect = _first(_first(resources["aws_lb_listener.http"]["default_action"])["redirect"])
    assert redirect["protocol"] == "HTTPS" and redirect["status_code"] == "HTTP_301"
    group = resources["aws_autoscaling_group.tier"]
    assert "aws_lb_target_group.api.arn" in group["target_group_arns"]
    assert "ELB" in group["health_check_type"]


def test_only_the_load_balancer_is_open_to_the_internet(terraform_files: dict[str, dict[str, Any]]) -> None:
    resources = _resources(terraform_files)
    cidr_rules = {
        name: body
        for name, body in resources.items()
        if name.startswith("aws_vpc_security_group_ingress_rule.") and "cidr_ipv4" in body
    }
    assert set(cidr_rules) == {"aws_vpc_security_group_ingress_rule.alb"}
    assert (
        cidr_rules["aws_vpc_security_group_ingress_rule.alb"]["security_group_id"]
        == "${aws_security_group.alb.id}"
    )
    ingress_ports = re.findall(r'port = (\d+), description = "HTTPS?', _source())
    assert sorted(set(ingress_ports)) == ["443", "80"]
    rules = _locals(terraform_files)["group_rules"]
    for port, target in (("5432", "rds"), ("6379", "redis"), ("2049", "efs"), ("8000", "api")):
        assert f"'to': '{target}'" in rules and f"'port': {port}" in rules, f"no rule into {target}:{port}"
    # Nothing but the load balancer and the workers (MLflow) reaches an instance.
    assert re.findall(r"'to': '(api|worker|beat|ops)', 'from': '(\w+)'", rules) == [
        ("api", "alb"),
        ("ops", "worker"),
    ]
    assert not any(
        name.startswith("aws_security_group.") and ("ingress" in body or "egress" in body)
        for name, body in resources.items()
    ), "use aws_vpc_security_group_*_rule resources, not inline rules"


def test_database_is_private_encrypted_and_backed_up(terraform_files: dict[str, dict[str, Any]]) -> None:
    resources = _resources(terraform_files)
    db = resources["aws_db_instance.main"]
    assert db["engine"] == "postgres" and db["engine_version"] == "${var.db_engine_version}"
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["backup_retention_period"] == "${var.db_backup_retention_days}"
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert db["multi_az"] == "${var.db_multi_az}"
    assert db["password"] == "${random_password.db.result}"
    parameters = resources["aws_db_parameter_group.main"]
    assert parameters["family"] == "postgres16"
    assert {"name": "rds.force_ssl", "value": "1"} in [
        {"name": p["name"], "value": p["value"]} for p in parameters["parameter"]
    ]


def test_redis_requires_tls_and_a_token_from_secrets_manager(
    terraform_files: dict[str, dict[str, Any]],
) -> None:
    resources = _resources(terraform_files)
    redis = resources["aws_elasticache_replication_group.main"]
    assert redis["engine"] == "redis" and redis["parameter_group_name"] == "default.redis7"
    assert redis["transit_encryption_enabled"] is True
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["auth_token"] == "${random_password.redis.result}"
    assert resources["aws_secretsmanager_secret_version.redis_auth_token"]["secret_string"] == (
        "${random_password.redis.result}"
    )


def test_secrets_are_stored_encrypted(terraform_files: dict[str, dict[str, Any]]) -> None:
    resources = _resources(terraform_files)
    parameters = {name: body for name, body in resources.items() if name.startswith("aws_ssm_parameter.")}
    assert parameters
    for name, body in parameters.items():
        assert body["type"] == "SecureString", name
        assert body["name"].startswith("${local.ssm_prefix}/"), name


def test_artifact_bucket_is_private_versioned_encrypted(terraform_files: dict[str, dict[str, Any]]) -> None:
    resources = _resources(terraform_files)
    block = resources["aws_s3_bucket_public_access_block.artifacts"]
    assert all(
        block[key] is True
        for key in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    assert (
        _first(resources["aws_s3_bucket_versioning.artifacts"]["versioning_configuration"])["status"]
        == "Enabled"
    )
    rule = _first(resources["aws_s3_bucket_server_side_encryption_configuration.artifacts"]["rule"])
    assert _first(rule["apply_server_side_encryption_by_default"])["sse_algorithm"] == "aws:kms"
    assert "aws_s3_bucket_lifecycle_configuration.artifacts" in resources


def test_iam_grants_nothing_wildcard(terraform_files: dict[str, dict[str, Any]]) -> None:
    source = _source()
    assert '"s3:*"' not in source.replace('effect  = "Deny"\n    actions = ["s3:*"]', "")
    assert "${aws_s3_bucket.artifacts.arn}/mlflow/*" in source, "S3 access is limited to the mlflow/ prefix"
    assert "${local.ssm_prefix}" in source
    for match in re.finditer(r'actions\s*=\s*\["\*"\]', source):
        window = source[max(0, match.start() - 80) : match.start()]
        assert 'effect  = "Deny"' in window or "Deny" in window, "an Allow of every action"


def test_alarms_cover_the_agreed_signals(terraform_files: dict[str, dict[str, Any]]) -> None:
    alarms = {
        name.split(".", 1)[1]: body
        for name, body in _resources(terraform_files).items()
        if name.startswith("aws_cloudwatch_metric_alarm.")
    }
    metrics = {body["metric_name"] for body in alarms.values()}
    assert {
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
        "CPUUtilization",
        "FreeStorageSpace",
    } <= metrics
    assert alarms["api_latency_p99"]["extended_statistic"] == "p99"
    assert alarms["rds_cpu"]["namespace"] == "AWS/RDS"
    assert all(body["alarm_actions"] == "${local.alarm_actions}" for body in alarms.values())


# ---------------------------------------------------------------------------------------------
# user_data: rendered by terraform itself, then shellcheck
# ---------------------------------------------------------------------------------------------


def _render_user_data(tools: Tools, tier: str, tmp_path: Path) -> str:
    values = {
        "tier": tier,
        "region": "us-east-1",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/movierec:0.1.0",
        "ecr_registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "log_group": f"/movierec/production/{tier}",
        "log_level": "INFO",
        "retrain_cron": "0 3 * * *",
        "database_url_parameter": "/movierec/production/database_url",
        "bootstrap_key_parameter": "/movierec/production/bootstrap_api_key",
        "redis_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:movierec/production/redis-auth-token",
        "redis_host": "master.movierec-production.abc123.use1.cache.amazonaws.com",
        "mount_efs": tier != "beat",
        "efs_id": "fs-0123456789abcdef0",
        "efs_access_point_id": "fsap-0123456789abcdef0",
        "mlflow_host": "mlflow.production.movierec.internal",
        "internal_zone_id": "Z0123456789ABCDEFGHIJ",
        "artifact_root": "s3://movierec-production-mlflow-artifacts-123456789012/mlflow",
        "api_url": "https://api.movierec.example.com",
    }
    hcl_values = ", ".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    expression = f'jsonencode(templatefile("{TERRAFORM_DIR / "user_data.sh.tftpl"}", {{{hcl_values}}}))\n'
    result = tools.run([tools.terraform, "console"], cwd=tmp_path, timeout=60, stdin=expression)
    assert result.returncode == 0, result.stderr
    rendered: str = json.loads(json.loads(result.stdout))
    return rendered


def test_user_data_matches_the_terraform_inputs(terraform_files: dict[str, dict[str, Any]]) -> None:
    template = (TERRAFORM_DIR / "user_data.sh.tftpl").read_text()
    used = set(re.findall(r"\$\{([a-z_]+)\}", template)) | set(re.findall(r"%\{ if ([a-z_]+)", template))
    compute = (TERRAFORM_DIR / "compute.tf").read_text()
    call = compute[compute.index("templatefile(") :]
    call = call[: call.index("})")]
    passed = set(re.findall(r"^\s+([a-z_]+)\s+=", call, flags=re.MULTILINE))
    assert used <= passed, f"the template uses values compute.tf does not pass: {used - passed}"
    assert passed <= used, f"compute.tf passes values the template ignores: {passed - used}"


@pytest.mark.parametrize("tier", TIERS)
def test_user_data_renders_and_passes_shellcheck(tools: Tools, tier: str, tmp_path: Path) -> None:
    script = _render_user_data(tools, tier, tmp_path)
    assert script.startswith("#!/bin/bash\n")
    assert "http_tokens" not in script and "${" not in script
    path = tmp_path / "user_data.sh"
    path.write_text(script)
    result = tools.run([tools.shellcheck, "--shell=bash", "--severity=style", path])
    assert result.returncode == 0, result.stdout
    assert len(script.encode()) < 16 * 1024, "EC2 user data is limited to 16 KiB"


@pytest.mark.parametrize("tier", TIERS)
def test_user_data_runs_existing_commands(tier: str, movierec_cli: MovierecCli) -> None:
    template = (TERRAFORM_DIR / "user_data.sh.tftpl").read_text()
    branch = re.search(rf"^  {tier}\)\n(.*?)^    ;;", template, flags=re.MULTILINE | re.DOTALL)
    assert branch, f"no case branch for {tier}"
    services = re.findall(r'"\$IMAGE" serve ([a-z]+)', branch.group(1))
    expected = {"api": ["api"], "worker": ["worker"], "beat": ["beat"], "ops": ["mlflow", "dashboard"]}[tier]
    assert services == expected
    pending = []
    for service in services:
        if movierec_cli.help(("serve", service)).exit_code != 0:
            pending.append(service)
    for service in services:
        if service not in pending:
            movierec_cli.require(("serve", service))
    if pending:
        movierec_cli.require(("serve", pending[0]))
