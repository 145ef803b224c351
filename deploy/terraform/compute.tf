data "aws_ami" "al2023" {
  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-kernel-*-x86_64"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  ecr_registry = var.ecr_repository_arn == null ? "" : "${split(":", var.ecr_repository_arn)[4]}.dkr.ecr.${split(":", var.ecr_repository_arn)[3]}.amazonaws.com"

  user_data = {
    for tier, spec in local.tiers : tier => templatefile("${path.module}/user_data.sh.tftpl", {
      tier                    = tier
      region                  = var.region
      image                   = var.image
      ecr_registry            = local.ecr_registry
      log_group               = aws_cloudwatch_log_group.tier[tier].name
      log_level               = var.log_level
      retrain_cron            = var.retrain_cron
      database_url_parameter  = aws_ssm_parameter.database_url.name
      bootstrap_key_parameter = aws_ssm_parameter.bootstrap_api_key.name
      redis_secret_arn        = aws_secretsmanager_secret.redis_auth_token.arn
      redis_host              = aws_elasticache_replication_group.main.primary_endpoint_address
      mount_efs               = spec.mount_efs
      efs_id                  = aws_efs_file_system.data.id
      efs_access_point_id     = aws_efs_access_point.data.id
      mlflow_host             = local.mlflow_host
      internal_zone_id        = aws_route53_zone.internal.zone_id
      artifact_root           = "s3://${aws_s3_bucket.artifacts.id}/mlflow"
      api_url                 = local.api_url
    })
  }
}

resource "aws_launch_template" "tier" {
  for_each = local.tiers

  name_prefix            = "${local.name}-${each.key}-"
  description            = "movierec ${var.environment} ${each.key}: Docker running ${var.image}"
  image_id               = coalesce(var.ami_id, data.aws_ami.al2023.id)
  instance_type          = each.value.instance_type
  vpc_security_group_ids = [aws_security_group.instance[each.key].id]
  user_data              = base64encode(local.user_data[each.key])
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance[each.key].arn
  }

  # IMDSv2 only. One hop is enough: containers use the host network.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${local.name}-${each.key}", Tier = each.key }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${local.name}-${each.key}", Tier = each.key }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_autoscaling_group" "tier" {
  for_each = local.tiers

  name                = "${local.name}-${each.key}"
  vpc_zone_identifier = aws_subnet.private[*].id
  min_size            = each.value.min_size
  max_size            = each.value.max_size
  desired_capacity    = each.value.min_size

  # The API is replaced when the load balancer's /ready check fails; the other tiers when EC2 does.
  target_group_arns         = each.key == "api" ? [aws_lb_target_group.api.arn] : []
  health_check_type         = each.key == "api" ? "ELB" : "EC2"
  health_check_grace_period = each.key == "api" ? var.api_health_check_grace_period_seconds : 300
  default_instance_warmup   = 300
  wait_for_capacity_timeout = "0"

  launch_template {
    id      = aws_launch_template.tier[each.key].id
    version = aws_launch_template.tier[each.key].latest_version
  }

  # A new launch template version (image tag, AMI, settings) rolls the group. Beat and ops have one
  # instance and must never have two: the old one stops before the new one starts.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = each.value.max_size > 1 ? 50 : 0
      max_healthy_percentage = 100
    }
  }

  enabled_metrics = [
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupTotalInstances",
  ]

  dynamic "tag" {
    for_each = merge({ Name = "${local.name}-${each.key}", Tier = each.key }, var.tags)

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }

  depends_on = [
    aws_efs_mount_target.data,
    aws_nat_gateway.main,
    aws_route_table_association.private,
  ]
}

resource "aws_autoscaling_policy" "cpu" {
  for_each = { for tier in ["api", "worker"] : tier => aws_autoscaling_group.tier[tier].name }

  name                   = "${local.name}-${each.key}-cpu"
  autoscaling_group_name = each.value
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = 60

    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}
