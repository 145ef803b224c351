provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Project     = "movierec"
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# The two zones named by availability_zones (default: the region's "a" and "b"); a name the
# account cannot use fails the plan instead of silently shrinking the network.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.az_names
  }
}
