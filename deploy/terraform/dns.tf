# A private zone gives MLflow a stable name inside the VPC (no service discovery needed): the ops
# instance UPSERTs mlflow.<zone> to its own private address on every boot.
resource "aws_route53_zone" "internal" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing is not available for private hosted zones.
  #checkov:skip=CKV2_AWS_39:Query logging is not available for private hosted zones through this resource; VPC flow logs cover the network.
  name          = "${var.environment}.movierec.internal"
  comment       = "movierec ${var.environment}: names of internal services"
  force_destroy = true

  vpc {
    vpc_id = aws_vpc.main.id
  }
}
