"""S3 handlers: the load balancers' access-log bucket and what the program sets on it (encryption, public access
block, lifecycle, the policy that lets the region's load-balancer account write)."""

from __future__ import annotations

from bench.localaws.resources.registry import CONTROL, Context, Created, Declared, handles, pascal, policy_document


@handles("aws:s3/bucket:Bucket", CONTROL)
def bucket(ctx: Context, r: Declared) -> Created:
    s3 = ctx.client("s3")
    location = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
    s3.create_bucket(Bucket=r.name, **location)
    return r.name, {"arn": f"arn:aws:s3:::{r.name}", "bucket": r.name, "bucketDomainName": f"{r.name}.s3.amazonaws.com"}


@handles("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", CONTROL)
def bucket_encryption(ctx: Context, r: Declared) -> Created:
    rules = [
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": by_default["sseAlgorithm"]}
            | ({"KMSMasterKeyID": by_default["kmsMasterKeyId"]} if by_default.get("kmsMasterKeyId") else {})
        }
        for by_default in (rule["applyServerSideEncryptionByDefault"] for rule in r.inputs["rules"])
    ]
    ctx.client("s3").put_bucket_encryption(
        Bucket=r.inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return r.inputs["bucket"], {}


@handles("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", CONTROL)
def bucket_public_access_block(ctx: Context, r: Declared) -> Created:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    configuration = {flag[:1].upper() + flag[1:]: bool(r.inputs.get(flag)) for flag in flags}
    ctx.client("s3").put_public_access_block(Bucket=r.inputs["bucket"], PublicAccessBlockConfiguration=configuration)
    return r.inputs["bucket"], {}


@handles("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", CONTROL)
def bucket_lifecycle(ctx: Context, r: Declared) -> Created:
    rules = [
        {("ID" if key == "Id" else key): value for key, value in rule.items()} for rule in pascal(r.inputs["rules"])
    ]
    ctx.client("s3").put_bucket_lifecycle_configuration(
        Bucket=r.inputs["bucket"], LifecycleConfiguration={"Rules": rules}
    )
    return r.inputs["bucket"], {}


@handles("aws:s3/bucketPolicy:BucketPolicy", CONTROL)
def bucket_policy(ctx: Context, r: Declared) -> Created:
    policy_document(r.inputs["policy"], "the bucket policy")
    ctx.client("s3").put_bucket_policy(Bucket=r.inputs["bucket"], Policy=r.inputs["policy"])
    return r.inputs["bucket"], {}
