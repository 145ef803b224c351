# One role per tier, each allowed only what its containers need:
#   every tier  read DATABASE_URL and the Redis AUTH token, write its own log group, Session
#               Manager access (no SSH, no open port)
#   api, worker, ops   mount the shared EFS data through the access point
#   api, ops    read the first admin API key (the API creates it, the dashboard sends it)
#   ops         MLflow artifacts under s3://<bucket>/mlflow/, its DNS record

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  for_each = local.tiers

  name               = "${local.name}-${each.key}"
  description        = "movierec ${var.environment} ${each.key} instances"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_instance_profile" "instance" {
  for_each = local.tiers

  name = "${local.name}-${each.key}"
  role = aws_iam_role.instance[each.key].name
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  for_each = local.tiers

  role       = aws_iam_role.instance[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "instance" {
  for_each = local.tiers

  statement {
    sid     = "ReadThisEnvironmentsParameters"
    actions = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = concat(
      [aws_ssm_parameter.database_url.arn],
      contains(["api", "ops"], each.key) ? [aws_ssm_parameter.bootstrap_api_key.arn] : [],
    )
  }

  statement {
    sid       = "ReadTheRedisToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.redis_auth_token.arn]
  }

  statement {
    sid       = "DecryptTheParametersAndSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "ssm.${var.region}.amazonaws.com",
        "secretsmanager.${var.region}.amazonaws.com",
      ]
    }
  }

  statement {
    sid = "WriteContainerLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = ["${aws_cloudwatch_log_group.tier[each.key].arn}:*"]
  }

  dynamic "statement" {
    for_each = each.value.mount_efs ? [1] : []

    content {
      sid = "MountSharedData"
      actions = [
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientWrite",
      ]
      resources = [aws_efs_file_system.data.arn]

      condition {
        test     = "StringEquals"
        variable = "elasticfilesystem:AccessPointArn"
        values   = [aws_efs_access_point.data.arn]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "ops" ? [1] : []

    content {
      sid       = "ListMlflowArtifacts"
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.artifacts.arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["mlflow", "mlflow/*"]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "ops" ? [1] : []

    content {
      sid       = "ReadWriteMlflowArtifacts"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = ["${aws_s3_bucket.artifacts.arn}/mlflow/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "ops" ? [1] : []

    content {
      sid       = "EncryptMlflowArtifacts"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [aws_kms_key.main.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.region}.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "ops" ? [1] : []

    content {
      sid       = "PointMlflowNameAtItself"
      actions   = ["route53:ChangeResourceRecordSets"]
      resources = [aws_route53_zone.internal.arn]
    }
  }

  dynamic "statement" {
    for_each = var.ecr_repository_arn == null ? [] : [1]

    content {
      sid = "PullTheImage"
      actions = [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
      ]
      resources = [var.ecr_repository_arn]
    }
  }
}

resource "aws_iam_role_policy" "instance" {
  for_each = local.tiers

  name   = "movierec-${each.key}"
  role   = aws_iam_role.instance[each.key].id
  policy = data.aws_iam_policy_document.instance[each.key].json
}

# ecr:GetAuthorizationToken has no resource-level permissions; it only returns a token that the
# repository policy and the statement above still restrict.
data "aws_iam_policy_document" "ecr_login" {
  #checkov:skip=CKV_AWS_356:ecr:GetAuthorizationToken supports only Resource "*".
  #checkov:skip=CKV_AWS_111:ecr:GetAuthorizationToken is not a write action on any resource.
  statement {
    sid       = "LogInToEcr"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "ecr_login" {
  for_each = var.ecr_repository_arn == null ? toset([]) : toset(keys(local.tiers))

  name   = "ecr-login"
  role   = aws_iam_role.instance[each.key].id
  policy = data.aws_iam_policy_document.ecr_login.json
}
