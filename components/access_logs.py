"""AccessLogBucket: where the internet-facing load balancers write their access logs.

Creates: one S3 bucket shared by every ALB of the stack, encrypted with S3-managed keys (the only encryption ALB log
delivery supports), closed to public access, with a lifecycle rule that expires logs after `retention_days`, and a
bucket policy that lets only the region's Elastic Load Balancing account write, and only under this account's
`AWSLogs/<account>/` prefix (the documented grant for regions opened before August 2022, us-west-2 among them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

ACCESS_LOG_RETENTION_DAYS = 90
LOG_ENCRYPTION = "AES256"  # SSE-S3: ALB access logs cannot be delivered to a KMS-encrypted bucket


@dataclass(frozen=True)
class AccessLogBucketArgs:
    retention_days: int = ACCESS_LOG_RETENTION_DAYS


def _delivery_policy(
    bucket_arn: pulumi.Input[str], elb_account_arn: pulumi.Input[str], account_id: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Only the region's load balancer service may put objects, and only under this account's log prefix."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "LoadBalancerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"AWS": elb_account_arn},
                    "Action": "s3:PutObject",
                    "Resource": pulumi.Output.concat(bucket_arn, "/AWSLogs/", account_id, "/*"),
                }
            ],
        }
    )


class AccessLogBucket(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:logs:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        self.bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=True, opts=child)  # `pulumi destroy` empties it
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": LOG_ENCRYPTION}}],
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-private",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-expiry",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.retention_days},
                }
            ],
            opts=child,
        )
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        elb_account = aws.elb.get_service_account_output(opts=invoke).arn
        self.policy = aws.s3.BucketPolicy(
            f"{name}-delivery",
            bucket=self.bucket.id,
            policy=_delivery_policy(self.bucket.arn, elb_account, account_id),
            opts=child,
        )
        self.bucket_name: pulumi.Output[str] = self.bucket.bucket
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket.arn})
