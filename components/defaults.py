"""Settings several components share that are infrastructure choices, not part of the app contract."""

from __future__ import annotations

SNS_MANAGED_KEY = "alias/aws/sns"  # SNS encryption at rest with the AWS managed key
LOG_RETENTION_DAYS = 14
