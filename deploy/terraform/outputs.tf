output "alb_dns_name" {
  description = "DNS name of the load balancer: point domain_name at it (CNAME, or a Route 53 alias with alb_zone_id)."
  value       = aws_lb.api.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone id of the load balancer, for an alias record."
  value       = aws_lb.api.zone_id
}

output "api_url" {
  description = "Public URL of the API once domain_name points at the load balancer."
  value       = local.api_url
}

output "autoscaling_group_names" {
  description = "Autoscaling group of each tier (api, worker, beat, ops), e.g. for `aws autoscaling start-instance-refresh`."
  value       = { for tier, group in aws_autoscaling_group.tier : tier => group.name }
}

output "log_group_names" {
  description = "CloudWatch log group of each tier's containers; streams are <instance id>/<service>."
  value       = { for tier, group in aws_cloudwatch_log_group.tier : tier => group.name }
}

output "rds_endpoint" {
  description = "Host name of the PostgreSQL instance (private)."
  value       = aws_db_instance.main.address
}

output "rds_instance_identifier" {
  description = "RDS instance identifier, for snapshots and point-in-time restores."
  value       = aws_db_instance.main.identifier
}

output "redis_primary_endpoint" {
  description = "Host name of the Redis primary (private, TLS and AUTH required)."
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "mlflow_internal_url" {
  description = "MLflow inside the VPC; from a workstation use Session Manager port forwarding to the ops instance (docs/operations.md)."
  value       = "http://${local.mlflow_host}:5000"
}

output "artifact_bucket" {
  description = "S3 bucket holding MLflow artifacts under mlflow/."
  value       = aws_s3_bucket.artifacts.id
}

output "database_url_parameter" {
  description = "Name of the SSM SecureString holding DATABASE_URL (the password is never an output)."
  value       = aws_ssm_parameter.database_url.name
}

output "bootstrap_api_key_parameter" {
  description = "Name of the SSM SecureString holding the first admin API key: aws ssm get-parameter --with-decryption --name <this>."
  value       = aws_ssm_parameter.bootstrap_api_key.name
}

output "redis_auth_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the Redis AUTH token."
  value       = aws_secretsmanager_secret.redis_auth_token.arn
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the CloudWatch alarms."
  value       = local.alarm_topic_arn
}

output "kms_key_arn" {
  description = "KMS key encrypting this environment's data at rest."
  value       = aws_kms_key.main.arn
}
