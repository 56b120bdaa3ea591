"""How the local deployer creates each resource type the program declares: one boto3 handler per Pulumi type, one
module per AWS service.

A handler gets the resource as the engine would hand it to the provider (resolved inputs, the physical name already
decided by `bench.localaws.naming`) and returns its id and the outputs the provider would report, taken from the
emulator's answer (ARNs, URLs, ids), so that later resources reference real values. Inputs arrive in Pulumi's shape
(camelCase keys, numbers as floats); each handler turns them into the AWS API's. Where an emulator accepts what AWS
refuses and Terraform's provider does not check at preview either, the handler checks AWS's documented rule itself
(`Invalid`), so the deploy fails as `pulumi up` would.

Two awsx components exist only on AWS and get honest stand-ins (`Standin`): the default-VPC lookup (`ec2`) answers
with moto's default VPC, and the image build (`ecr`; no Docker engine here) answers with a tag naming the build
context's content; the local ECS runs that context's ENTRYPOINT. A Lambda subscribed to a topic (`sns`) becomes a
local queue subscribed to it, which the local runtime's relay reads to invoke the function's handler; a Lambda that a
scheduled EventBridge rule targets (`events`) is run by the local runtime on the rule's period.

What the handlers share (`Declared`, `Context`, the registry `HANDLERS`, the input shapes) is `registry`. Importing
this package imports every service module, so that each has registered its handlers before the deployer looks one up.
"""

from bench.localaws.resources import (  # noqa: F401 - imported for their registrations
    appautoscaling,
    cloudwatch,
    dynamodb,
    ec2,
    ecr,
    ecs,
    elbv2,
    events,
    iam,
    kms,
    lambda_,
    logs,
    route53,
    s3,
    secretsmanager,
    sns,
    sqs,
)
