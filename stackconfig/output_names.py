"""The names of the stack outputs: the Pulumi program exports them, the operator commands read them.

One name each, so `pulumi stack output --json`, an outputs file (`--outputs FILE`) and the explicit flags of every
`python -m ops.NAME` agree. The last ones are written only by the local system (the bench), into its outputs file.
"""

from __future__ import annotations

from typing import Final

SYNC_URL: Final = "syncUrl"
ASYNC_URL: Final = "asyncUrl"
TOPIC_ARN: Final = "topicArn"
QUEUE_URL: Final = "queueUrl"
DLQ_URL: Final = "dlqUrl"
ORDERS_TABLE: Final = "ordersTable"
CLUSTER_NAME: Final = "clusterName"
WORKER_SERVICE_NAME: Final = "workerServiceName"
RECEIVER_SERVICE_NAME: Final = "receiverServiceName"
ALERTS_TOPIC_ARN: Final = "alertsTopicArn"  # people subscribe here (e-mail, webhook); readable text
ALARM_TOPIC_ARN: Final = "alarmTopicArn"  # alarm actions publish raw alarm JSON here; the notifier reads it
DASHBOARD_URL: Final = "dashboardUrl"
ALARM_PREFIX: Final = "alarmPrefix"
ALARM_PROFILE: Final = "alarmProfile"  # the profile whose thresholds the stack's alarms were deployed with
NOTIFIER_FUNCTION_NAME: Final = "notifierFunctionName"  # the Lambda that turns alarms into readable alerts
SWEEPER_FUNCTION_NAME: Final = "sweeperFunctionName"  # the Lambda that closes orphaned pending orders (daily)
WORKER_COUNT: Final = "workerCount"
PAYMENT_SECONDS: Final = "paymentSeconds"
SALE_LEAD_SECONDS: Final = "saleLeadSeconds"  # how long before a sale the calendar raises the workers
ACCEPTABLE_LATENCY: Final = "acceptableLatencySeconds"  # the expected-wait alarms' thresholds are multiples
# Two or more regions only (docs/multi-region.md): the latency-routed name, and each other region's receiver
# (asyncUrl stays the primary region's).
ORDERS_DOMAIN_URL: Final = "ordersDomainUrl"
REGIONAL_ASYNC_URLS: Final = "regionalAsyncUrls"  # {region: receiver URL}
# Local runtime only (bench.localaws.deployer): where the emulators answer, so ops commands reading a local outputs
# file reach
# them without exporting anything.
LOCAL_ENDPOINT: Final = "awsEndpointUrl"
LOCAL_SERVICE_ENDPOINTS: Final = "awsServiceEndpoints"  # {"AWS_ENDPOINT_URL_ECS": url, ...}
LOCAL_CREDENTIALS: Final = "awsCredentials"  # {"AWS_ACCESS_KEY_ID": ..., ...}: the emulators' keys
# What the emulators behind a local outputs file do not model, so ops commands say it rather than judge it:
# {CAVEAT_*: why}, and under CAVEAT_MUTED_ALARMS {alarm key: why the local system muted its actions}.
LOCAL_CAVEATS: Final = "localCaveats"
CAVEAT_MUTED_ALARMS: Final = "mutedAlarms"
CAVEAT_ROLLOUTS: Final = "ecsRollouts"
CAVEAT_EMAIL: Final = "emailSubscriptions"
CAVEAT_SERVICE_EVENTS: Final = "ecsServiceEvents"
