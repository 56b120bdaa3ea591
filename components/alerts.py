"""Alerts: where alarms go and how people hear about them.

Creates: the alarm topic (alarm and OK actions publish raw alarm JSON here; encrypted with a customer-managed KMS key,
because CloudWatch cannot publish to a topic under the AWS managed SNS key), the alerts topic (readable messages;
e-mail subscriptions from `alertEmails`), and the notifier Lambda (`app.notifier.handler`) that turns each alarm into
a readable message and, when the secret `alertWebhookUrl` is set, posts it to that chat webhook itself (a chat webhook
cannot confirm an SNS HTTPS subscription). The webhook URL lives in a Secrets Manager secret, never in the function's
configuration: the function holds only the secret's ARN and reads the URL when it runs. SNS invokes the function
asynchronously, so an alarm it fails to relay (after Lambda's own retries) lands in the notifier's dead-letter queue
instead of vanishing. The Lambda's role may only publish to the alerts topic, write its own log group, send to its
dead-letter queue, read the webhook secret and read the worker service (to say how many tasks to add). The function,
its log group, role, DLQ and policy are made as every app function is (components.functions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from app import contract
from components.defaults import SNS_MANAGED_KEY
from components.functions import AppCode, app_function
from components.iam import Grant
from components.queue_worker import WorkerServiceRef
from stackconfig.schema import CONFIG_DEFAULTS

NOTIFIER_HANDLER = "app.notifier.handler"
NOTIFIER = AppCode(
    handler=NOTIFIER_HANDLER,
    # The app/ files the notifier imports; boto3 comes with the Lambda runtime.
    files=(
        "app/__init__.py",
        "app/notifier.py",
        "app/contract.py",
        "app/alarm_catalogue.py",
        "app/expected_wait.py",
        "app/aws.py",
    ),
    timeout_seconds=10,
)


@dataclass(frozen=True)
class AlertsArgs:
    source_root: Path  # the directory holding app/
    emails: Sequence[str] = ()
    webhook_url: pulumi.Output[str] | None = None  # a secret
    worker_service: WorkerServiceRef | None = None  # no async stack: no expected-wait alarms to size
    acceptable_latency_seconds: float = CONFIG_DEFAULTS.acceptable_latency_seconds


def _alarm_key_policy(account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The account administers the key; CloudWatch (in this account only) may encrypt alarm messages with it."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": pulumi.Output.concat("arn:aws:iam::", account_id, ":root")},
                    "Action": "kms:*",
                    "Resource": "*",  # in a key policy, "*" is this key
                },
                {
                    "Sid": "CloudWatchAlarmsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


class Alerts(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:alerts:Alerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        key = aws.kms.Key(
            f"{name}-alarm-key",
            description="encrypts the alarm topic; CloudWatch may use it",
            enable_key_rotation=True,
            policy=_alarm_key_policy(account_id),
            opts=child,
        )
        self.alarm_topic = aws.sns.Topic(f"{name}-alarm", kms_master_key_id=key.arn, opts=child)
        self.alerts_topic = aws.sns.Topic(f"{name}-alerts", kms_master_key_id=SNS_MANAGED_KEY, opts=child)
        for email in args.emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{email}", topic=self.alerts_topic.arn, protocol="email", endpoint=email, opts=child
            )
        grants = [Grant(self.alerts_topic.arn, ("sns:Publish",))]
        environment: dict[str, pulumi.Input[str]] = {contract.ENV_ALERTS_TOPIC_ARN: self.alerts_topic.arn}
        if args.worker_service is not None:
            grants.append(args.worker_service.grant_describe())
            environment |= {
                **args.worker_service.environment(),
                contract.ENV_ACCEPTABLE_LATENCY: str(args.acceptable_latency_seconds),
            }
        if args.webhook_url is not None:
            webhook = aws.secretsmanager.Secret(
                f"{name}-webhook", description="the alert chat webhook URL", recovery_window_in_days=0, opts=child
            )  # destroy deletes it at once
            aws.secretsmanager.SecretVersion(
                f"{name}-webhook-url", secret_id=webhook.id, secret_string=args.webhook_url, opts=child
            )
            grants.append(Grant(webhook.arn, ("secretsmanager:GetSecretValue",)))
            environment[contract.ENV_ALERT_WEBHOOK_SECRET_ARN] = webhook.arn
        made = app_function(
            f"{name}-notifier",
            NOTIFIER,
            source_root=args.source_root,
            grants=grants,
            environment=environment,
            opts=child,
        )
        self.notifier, self.dlq = made.function, made.dlq
        aws.lambda_.Permission(
            f"{name}-notifier-invoke",
            action="lambda:InvokeFunction",
            function=self.notifier.name,
            principal="sns.amazonaws.com",
            source_arn=self.alarm_topic.arn,
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-alarm-to-notifier",
            topic=self.alarm_topic.arn,
            protocol="lambda",
            endpoint=self.notifier.arn,
            opts=child,
        )
        self.alarm_topic_arn: pulumi.Output[str] = self.alarm_topic.arn
        self.alerts_topic_arn: pulumi.Output[str] = self.alerts_topic.arn
        self.notifier_name: pulumi.Output[str] = self.notifier.name
        self.register_outputs(
            {
                "alarm_topic_arn": self.alarm_topic_arn,
                "alerts_topic_arn": self.alerts_topic_arn,
                "notifier_arn": self.notifier.arn,
                "notifier_name": self.notifier_name,
                "notifier_dlq_arn": self.dlq.arn,
            }
        )
