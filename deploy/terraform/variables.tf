# ---------------------------------------------------------------------------------------------
# Where and what
# ---------------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy into, e.g. us-east-1."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "environment" {
  description = "Name of this deployment (production, staging, ...); part of every resource name and of the SSM parameter path /movierec/<environment>/."
  type        = string
  default     = "production"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}$", var.environment))
    error_message = "environment must be 2-19 characters (load balancer names are limited to 32): lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource (on top of Project, Environment and ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "The movierec container image built from deploy/docker/Dockerfile, with an explicit tag or digest, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/movierec:0.1.0."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9./_:-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$", var.image)) && !endswith(var.image, ":latest")
    error_message = "image must name a tag or a digest (not :latest), e.g. registry/movierec:0.1.0."
  }
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding the image, if it is in ECR: the instances get pull access to it and log in to ECR. null for a public or otherwise reachable registry."
  type        = string
  default     = null

  validation {
    condition     = var.ecr_repository_arn == null || can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", var.ecr_repository_arn))
    error_message = "ecr_repository_arn must be an ECR repository ARN or null."
  }
}

# ---------------------------------------------------------------------------------------------
# Public endpoint
# ---------------------------------------------------------------------------------------------

variable "domain_name" {
  description = "Public host name of the API, covered by acm_certificate_arn, e.g. api.movierec.example.com. Point it (CNAME or alias) at the alb_dns_name output."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS name such as api.example.com."
  }
}

variable "acm_certificate_arn" {
  description = "ARN of an issued ACM certificate for domain_name, in the same region, used by the HTTPS listener."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$", var.acm_certificate_arn))
    error_message = "acm_certificate_arn must be an ACM certificate ARN."
  }
}

variable "alb_ingress_cidrs" {
  description = "IPv4 ranges allowed to reach the load balancer on ports 80 (redirected) and 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.alb_ingress_cidrs) > 0 && alltrue([for cidr in var.alb_ingress_cidrs : can(cidrnetmask(cidr))])
    error_message = "alb_ingress_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "enable_waf" {
  description = "Attach an AWS WAF web ACL (AWS managed common and known-bad-inputs rules, and a per-IP rate limit) to the load balancer."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests one client IP may send in 5 minutes before WAF blocks it (when enable_waf is true)."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit_per_5_minutes >= 100
    error_message = "waf_rate_limit_per_5_minutes must be at least 100 (the AWS minimum)."
  }
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "IPv4 range of the VPC; a /16 to /20. Public subnets take its first two /24-equivalents (newbits 8), private ones start at the eleventh."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /20."
  }
}

variable "availability_zones" {
  description = "The two availability zones to use, e.g. [\"us-east-1a\", \"us-east-1b\"]; null means the region's zones a and b."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || (length(var.availability_zones) == 2 && length(distinct(var.availability_zones)) == 2)
    error_message = "availability_zones must list exactly two different zones, or be null."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both private subnets (cheaper) instead of one per availability zone (survives the loss of a zone)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------

variable "ami_id" {
  description = "AMI for every instance; null picks the newest Amazon Linux 2023 x86_64 AMI. A new AMI changes the launch templates and rolls the instances."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0, or be null."
  }
}

variable "api_instance_type" {
  description = "EC2 instance type of the API instances."
  type        = string
  default     = "t3.small"
}

variable "api_min_size" {
  description = "Fewest API instances; keep at least 2 so both availability zones serve traffic."
  type        = number
  default     = 2

  validation {
    condition     = var.api_min_size >= 1
    error_message = "api_min_size must be at least 1."
  }
}

variable "api_max_size" {
  description = "Most API instances the CPU target-tracking policy may scale out to."
  type        = number
  default     = 4

  validation {
    condition     = var.api_max_size >= 1 && var.api_max_size <= 20
    error_message = "api_max_size must be between 1 and 20."
  }
}

variable "worker_instance_type" {
  description = "EC2 instance type of the Celery workers (they train the models; memory matters)."
  type        = string
  default     = "t3.medium"
}

variable "worker_min_size" {
  description = "Fewest Celery worker instances."
  type        = number
  default     = 1

  validation {
    condition     = var.worker_min_size >= 1
    error_message = "worker_min_size must be at least 1: nothing else runs the nightly retrain."
  }
}

variable "worker_max_size" {
  description = "Most Celery worker instances the CPU target-tracking policy may scale out to."
  type        = number
  default     = 3

  validation {
    condition     = var.worker_max_size >= 1 && var.worker_max_size <= 20
    error_message = "worker_max_size must be between 1 and 20."
  }
}

variable "beat_instance_type" {
  description = "EC2 instance type of the single Celery beat instance."
  type        = string
  default     = "t3.micro"
}

variable "ops_instance_type" {
  description = "EC2 instance type of the single instance that runs MLflow, the dashboard and the bootstrap (migrations, first load and first training)."
  type        = string
  default     = "t3.medium"
}

variable "root_volume_size_gb" {
  description = "Size of each instance's encrypted gp3 root volume, in GiB (the image is about 2 GiB)."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size_gb >= 20 && var.root_volume_size_gb <= 500
    error_message = "root_volume_size_gb must be between 20 and 500."
  }
}

variable "api_health_check_grace_period_seconds" {
  description = "Seconds a new API instance has to pass the /ready check before the autoscaling group replaces it (Docker install, image pull and, on a first deployment, the first training on the ops instance)."
  type        = number
  default     = 900

  validation {
    condition     = var.api_health_check_grace_period_seconds >= 120
    error_message = "api_health_check_grace_period_seconds must be at least 120."
  }
}

variable "log_level" {
  description = "LOG_LEVEL of every movierec process."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "retrain_cron" {
  description = "RETRAIN_CRON: when beat schedules the nightly retrain (UTC, five cron fields)."
  type        = string
  default     = "0 3 * * *"

  validation {
    condition     = length(split(" ", trimspace(var.retrain_cron))) == 5
    error_message = "retrain_cron must have five fields: minute hour day month weekday."
  }
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL (RDS)
# ---------------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL version on RDS; a major version (\"16\") lets RDS pick and upgrade the minor version."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be PostgreSQL 16 (\"16\" or \"16.x\")."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.small"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS instance class such as db.t4g.small."
  }
}

variable "db_allocated_storage_gb" {
  description = "Initial RDS storage in GiB (gp3)."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 65536
    error_message = "db_allocated_storage_gb must be between 20 and 65536."
  }
}

variable "db_max_allocated_storage_gb" {
  description = "Upper bound for RDS storage autoscaling in GiB; must be larger than db_allocated_storage_gb."
  type        = number
  default     = 100

  validation {
    condition     = var.db_max_allocated_storage_gb >= 21 && var.db_max_allocated_storage_gb <= 65536
    error_message = "db_max_allocated_storage_gb must be between 21 and 65536 (and larger than db_allocated_storage_gb)."
  }
}

variable "db_multi_az" {
  description = "Run RDS with a synchronous standby in a second availability zone (doubles the instance cost)."
  type        = bool
  default     = false
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups kept; point-in-time recovery reaches back this far."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion. Set to false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

variable "db_performance_insights_enabled" {
  description = "Enable RDS Performance Insights (encrypted with the stack's KMS key). Not offered on every instance class."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Redis (ElastiCache)
# ---------------------------------------------------------------------------------------------

variable "redis_engine_version" {
  description = "ElastiCache Redis OSS engine version (7.x)."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.redis_engine_version))
    error_message = "redis_engine_version must be a Redis 7 version such as 7.1."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.micro"

  validation {
    condition     = startswith(var.redis_node_type, "cache.")
    error_message = "redis_node_type must be an ElastiCache node type such as cache.t4g.micro."
  }
}

variable "redis_num_cache_clusters" {
  description = "Redis nodes (one primary plus replicas). 2 or more enables automatic failover across zones."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_num_cache_clusters >= 1 && var.redis_num_cache_clusters <= 6
    error_message = "redis_num_cache_clusters must be between 1 and 6."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Days of daily Redis snapshots kept (Redis is a cache, but its snapshot restores the live-model pointer and queued tasks)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_snapshot_retention_days >= 1 && var.redis_snapshot_retention_days <= 35
    error_message = "redis_snapshot_retention_days must be between 1 and 35."
  }
}

# ---------------------------------------------------------------------------------------------
# Storage, logs and alarms
# ---------------------------------------------------------------------------------------------

variable "artifact_noncurrent_version_days" {
  description = "Days an overwritten or deleted MLflow artifact version is kept in S3 before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.artifact_noncurrent_version_days >= 1
    error_message = "artifact_noncurrent_version_days must be at least 1."
  }
}

variable "access_log_retention_days" {
  description = "Days load balancer and S3 access logs are kept in the logs bucket."
  type        = number
  default     = 90

  validation {
    condition     = var.access_log_retention_days >= 1
    error_message = "access_log_retention_days must be at least 1."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps container, VPC flow, WAF, RDS and Redis logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "alarm_topic_arn" {
  description = "ARN of an existing SNS topic that receives the CloudWatch alarms; null creates an encrypted topic (see alarm_email)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:.+$", var.alarm_topic_arn))
    error_message = "alarm_topic_arn must be an SNS topic ARN or null."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the created alarm topic (AWS asks it to confirm); ignored when alarm_topic_arn is set."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be an e-mail address or null."
  }
}

variable "alarm_5xx_per_5_minutes" {
  description = "5xx responses (from the targets, or from the load balancer itself) in 5 minutes that raise an alarm."
  type        = number
  default     = 10
}

variable "alarm_p99_latency_seconds" {
  description = "p99 target response time, in seconds, above which the latency alarm fires (3 of 5 minutes)."
  type        = number
  default     = 1
}
