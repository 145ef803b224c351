# Who may talk to whom. The internet reaches only the load balancer; the API instances accept
# traffic only from it; the worker reaches MLflow; PostgreSQL, Redis and EFS accept only the
# instances that use them. Outbound traffic is limited to HTTPS (AWS APIs, the image registry,
# package repositories) and the ports of the services above.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "movierec load balancer: HTTPS and HTTP (redirect) from the allowed ranges"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_security_group" "instance" {
  #checkov:skip=CKV2_AWS_5:Attached to aws_launch_template.tier[each.key]; the check does not follow for_each keys.
  for_each = local.tiers

  name        = "${local.name}-${each.key}"
  description = "movierec ${each.key} instances"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-${each.key}" }
}

resource "aws_security_group" "rds" {
  name        = "${local.name}-rds"
  description = "movierec PostgreSQL: 5432 from the movierec instances only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-rds" }
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "movierec Redis: 6379 from the movierec instances only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-redis" }
}

resource "aws_security_group" "efs" {
  name        = "${local.name}-efs"
  description = "movierec shared model files: NFS from the API, worker and ops instances only"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-efs" }
}

locals {
  alb_ingress = merge(
    { for index, cidr in var.alb_ingress_cidrs : "https-${index}" => { cidr = cidr, port = 443, description = "HTTPS from ${cidr}" } },
    { for index, cidr in var.alb_ingress_cidrs : "http-${index}" => { cidr = cidr, port = 80, description = "HTTP from ${cidr}, redirected to HTTPS" } },
  )

  # Rules between security groups: key => where the traffic goes, where it comes from, port.
  group_rules = merge(
    { "api-from-alb" = { to = "api", from = "alb", port = 8000, description = "API traffic from the load balancer" } },
    { "ops-mlflow-from-worker" = { to = "ops", from = "worker", port = 5000, description = "MLflow tracking from the workers" } },
    { for tier in keys(local.tiers) : "rds-from-${tier}" => { to = "rds", from = tier, port = 5432, description = "PostgreSQL from the ${tier} instances" } },
    { for tier in keys(local.tiers) : "redis-from-${tier}" => { to = "redis", from = tier, port = 6379, description = "Redis from the ${tier} instances" } },
    { for tier, spec in local.tiers : "efs-from-${tier}" => { to = "efs", from = tier, port = 2049, description = "NFS from the ${tier} instances" } if spec.mount_efs },
  )

  security_group_ids = merge(
    { for tier, group in aws_security_group.instance : tier => group.id },
    {
      alb   = aws_security_group.alb.id
      rds   = aws_security_group.rds.id
      redis = aws_security_group.redis.id
      efs   = aws_security_group.efs.id
    },
  )
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  #checkov:skip=CKV_AWS_260:Port 80 is open only to redirect to HTTPS (see aws_lb_listener.http).
  for_each = local.alb_ingress

  security_group_id = aws_security_group.alb.id
  description       = each.value.description
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "between_groups" {
  for_each = local.group_rules

  security_group_id            = local.security_group_ids[each.value.to]
  referenced_security_group_id = local.security_group_ids[each.value.from]
  description                  = each.value.description
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

# The matching outbound rules: a group may send only what its peer accepts.
resource "aws_vpc_security_group_egress_rule" "between_groups" {
  for_each = local.group_rules

  security_group_id            = local.security_group_ids[each.value.from]
  referenced_security_group_id = local.security_group_ids[each.value.to]
  description                  = each.value.description
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = local.tiers

  security_group_id = aws_security_group.instance[each.key].id
  description       = "HTTPS to AWS APIs, the image registry and package repositories"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}
