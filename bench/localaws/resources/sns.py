"""SNS handlers: topics and subscriptions. A Lambda subscribed to a topic becomes a local queue subscribed to it,
which the local runtime's relay reads to invoke the function's handler (no emulator here runs a Lambda)."""

from __future__ import annotations

import json

from bench.localaws.resources.registry import DATA_PLANE, Context, Created, Declared, Relay, Standin, handles


@handles("aws:sns/topic:Topic", DATA_PLANE)
def topic(ctx: Context, r: Declared) -> Created:
    attributes = {"KmsMasterKeyId": r.inputs["kmsMasterKeyId"]} if r.inputs.get("kmsMasterKeyId") else {}
    arn = ctx.client("sns").create_topic(Name=r.name, Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn}


@handles("aws:sns/topicSubscription:TopicSubscription", DATA_PLANE, stable=False)
def subscription(ctx: Context, r: Declared) -> Created:
    sns, protocol = ctx.client("sns"), r.inputs["protocol"]
    if protocol == "lambda":
        return _lambda_subscription(ctx, r)
    attributes = {"RawMessageDelivery": "true"} if r.inputs.get("rawMessageDelivery") else {}
    arn = sns.subscribe(
        TopicArn=r.inputs["topic"],
        Protocol=protocol,
        Endpoint=r.inputs["endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return arn, {"arn": arn}


def _lambda_subscription(ctx: Context, r: Declared) -> Created:
    """LOCAL STAND-IN: the emulators cannot invoke a Lambda, so a queue subscribed to the topic takes its events and
    the local runtime's relay runs the function's handler on them, with the function's environment as deployed."""
    function_name = r.inputs["endpoint"].rsplit(":", 1)[-1]
    found = ctx.client("lambda").get_function(FunctionName=function_name)["Configuration"]
    sqs, sns = ctx.client("sqs"), ctx.client("sns")
    url = sqs.create_queue(QueueName=f"{r.logical}-events"[:80])["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sns.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": r.inputs["topic"]}},
                        }
                    ],
                }
            )
        },
    )
    subscription_arn = sns.subscribe(
        TopicArn=r.inputs["topic"], Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    ctx.relays.append(
        Relay(
            url, function_name, found["Handler"], dict(found.get("Environment", {}).get("Variables", {})), found["Role"]
        )
    )
    ctx.standins.append(
        Standin(
            r.urn,
            f"Lambda {function_name} subscribed through local queue {url.rsplit('/', 1)[-1]}"
            ", relayed by the local runtime",
        )
    )
    return subscription_arn, {"arn": subscription_arn}
