"""SQS handlers: queues (their attributes within AWS's ranges, the redrive policy checked) and queue policies."""

from __future__ import annotations

from bench.localaws.resources.registry import (
    DATA_PLANE,
    Context,
    Created,
    Declared,
    Invalid,
    between,
    handles,
    json_text,
    policy_document,
    whole,
)

QUEUE_ATTRIBUTES = {  # Pulumi input -> (SQS attribute, AWS's allowed range)
    "visibilityTimeoutSeconds": ("VisibilityTimeout", 0, 43_200),
    "messageRetentionSeconds": ("MessageRetentionPeriod", 60, 1_209_600),
    "receiveWaitTimeSeconds": ("ReceiveMessageWaitTimeSeconds", 0, 20),
    "delaySeconds": ("DelaySeconds", 0, 900),
    "maxMessageSize": ("MaximumMessageSize", 1_024, 262_144),
}


def _redrive(text: str) -> str:
    policy = json_text(text, "redrivePolicy")
    if not isinstance(policy, dict) or "deadLetterTargetArn" not in policy:
        raise Invalid("redrivePolicy must name a deadLetterTargetArn")
    between("redrivePolicy maxReceiveCount", int(policy.get("maxReceiveCount", 0)), 1, 1000)
    return text


@handles("aws:sqs/queue:Queue", DATA_PLANE)
def queue(ctx: Context, r: Declared) -> Created:
    attributes: dict[str, str] = {}
    for prop, (attribute, low, high) in QUEUE_ATTRIBUTES.items():
        if r.inputs.get(prop) is not None:
            value = whole(r.inputs[prop])
            between(prop, value, low, high)
            attributes[attribute] = str(value)
    if r.inputs.get("redrivePolicy"):
        attributes["RedrivePolicy"] = _redrive(r.inputs["redrivePolicy"])
    if r.inputs.get("redriveAllowPolicy"):
        json_text(r.inputs["redriveAllowPolicy"], "redriveAllowPolicy")
        attributes["RedriveAllowPolicy"] = r.inputs["redriveAllowPolicy"]
    if r.inputs.get("sqsManagedSseEnabled") is not None:
        attributes["SqsManagedSseEnabled"] = str(bool(r.inputs["sqsManagedSseEnabled"])).lower()
    if r.inputs.get("fifoQueue"):
        attributes["FifoQueue"] = "true"
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=r.name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"url": url, "arn": arn}


@handles("aws:sqs/queuePolicy:QueuePolicy", DATA_PLANE)
def queue_policy(ctx: Context, r: Declared) -> Created:
    policy_document(r.inputs["policy"], "the queue policy")
    ctx.client("sqs").set_queue_attributes(QueueUrl=r.inputs["queueUrl"], Attributes={"Policy": r.inputs["policy"]})
    return r.inputs["queueUrl"], {}
