locals {
  name       = "movierec-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Two availability zones: public subnets for the ALB and the NAT gateways, private ones for
  # everything else.
  az_names        = coalesce(var.availability_zones, ["${var.region}a", "${var.region}b"])
  azs             = local.az_names
  public_subnets  = [for index in range(2) : cidrsubnet(var.vpc_cidr, 8, index)]
  private_subnets = [for index in range(2) : cidrsubnet(var.vpc_cidr, 8, 10 + index)]

  # SSM parameters of this environment live under one path; instance roles may read only that path.
  ssm_prefix = "/movierec/${var.environment}"

  # The MLflow server's stable name inside the VPC; the ops instance points it at itself on boot.
  mlflow_host = "mlflow.${aws_route53_zone.internal.name}"

  api_url = "https://${var.domain_name}"

  # One launch template and one autoscaling group per tier. Beat must run exactly once: its group
  # is pinned to one instance. The ops instance runs MLflow, the dashboard and the bootstrap
  # (migrations, first data load and first training) on every boot.
  tiers = {
    api = {
      instance_type = var.api_instance_type
      min_size      = var.api_min_size
      max_size      = var.api_max_size
      mount_efs     = true
    }
    worker = {
      instance_type = var.worker_instance_type
      min_size      = var.worker_min_size
      max_size      = var.worker_max_size
      mount_efs     = true
    }
    beat = {
      instance_type = var.beat_instance_type
      min_size      = 1
      max_size      = 1
      mount_efs     = false
    }
    ops = {
      instance_type = var.ops_instance_type
      min_size      = 1
      max_size      = 1
      mount_efs     = true
    }
  }
}
