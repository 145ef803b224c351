# Secrets are generated here, stored encrypted, and read by the instances at boot. None is an
# output. They are in the Terraform state, so keep the state in an encrypted, access-controlled
# backend (README.md).

# Letters, digits, "-" and "_": valid in an RDS password and safe inside a connection URL.
resource "random_password" "db" {
  length           = 32
  special          = true
  override_special = "-_"
}

# ElastiCache AUTH tokens allow printable characters except @, " and /; alphanumerics are safe in URLs.
resource "random_password" "redis" {
  length  = 64
  special = false
}

resource "random_password" "bootstrap_api_key" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "redis_auth_token" {
  #checkov:skip=CKV2_AWS_57:Rotating an ElastiCache AUTH token needs a coordinated ROTATE/SET on the replication group; see docs/operations.md.
  name                    = "movierec/${var.environment}/redis-auth-token"
  description             = "AUTH token of the movierec ${var.environment} ElastiCache replication group"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis_auth_token" {
  secret_id     = aws_secretsmanager_secret.redis_auth_token.id
  secret_string = random_password.redis.result
}

resource "aws_ssm_parameter" "database_url" {
  name        = "${local.ssm_prefix}/database_url"
  description = "DATABASE_URL of movierec ${var.environment} (RDS, TLS required)"
  type        = "SecureString"
  key_id      = aws_kms_key.main.arn
  value       = "postgresql://${aws_db_instance.main.username}:${random_password.db.result}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${aws_db_instance.main.db_name}?sslmode=require"
}

resource "aws_ssm_parameter" "bootstrap_api_key" {
  name        = "${local.ssm_prefix}/bootstrap_api_key"
  description = "Admin API key of movierec ${var.environment}: created by the API when none exists, sent by the dashboard"
  type        = "SecureString"
  key_id      = aws_kms_key.main.arn
  value       = random_password.bootstrap_api_key.result

  # Rotating the admin key overwrites this parameter by hand (docs/operations.md); keep that value.
  lifecycle {
    ignore_changes = [value]
  }
}
