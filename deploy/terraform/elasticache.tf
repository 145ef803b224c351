resource "aws_elasticache_subnet_group" "main" {
  name        = local.name
  description = "movierec ${var.environment}: private subnets"
  subnet_ids  = aws_subnet.private[*].id
}

resource "aws_cloudwatch_log_group" "redis" {
  name              = "/movierec/${var.environment}/redis-slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# Cache of recommendation lists, Celery broker, A/B bucket cache, rate limits and the live-model
# pointer. TLS and AUTH are required; clients use rediss://:TOKEN@HOST:6379/0.
resource "aws_elasticache_replication_group" "main" {
  #checkov:skip=CKV2_AWS_50:Failover needs two nodes; redis_num_cache_clusters >= 2 turns it on. One node by default: Redis holds a cache and rebuildable state (docs/operations.md).
  replication_group_id = local.name
  description          = "movierec ${var.environment}: cache, Celery broker, live-model pointer"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  num_cache_clusters   = var.redis_num_cache_clusters
  parameter_group_name = "default.redis7"
  port                 = 6379

  automatic_failover_enabled = var.redis_num_cache_clusters > 1
  multi_az_enabled           = var.redis_num_cache_clusters > 1

  subnet_group_name  = aws_elasticache_subnet_group.main.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "05:00-06:00"
  maintenance_window         = "sun:07:30-sun:08:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}
