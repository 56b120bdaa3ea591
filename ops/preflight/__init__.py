"""Go / no-go before a sale (`python -m ops.preflight`), one module per family of checks.

The checks: capacity (`limits`: the planner's tasks for R under the scalable target's maximum; the Fargate vCPU quota
from the Service Quotas API, or AWS's documented default when the API does not answer), the sale calendar
(`schedule`: a scheduled action that raises the worker service's capacity far enough ahead of --sale-start, in the
sale's time zone, and steps it down after), the order queue (`queues`: visibility timeout against the payment time,
the DLQ attached, retention, an empty DLQ), the alarms (`alerting`: all present, none muted, the stack profile's
thresholds, a confirmed subscriber on the alerts topic), the worker and receiver services (`services`: running at
their desired counts, the last deployment completed, their task definitions' WORKER_COUNT and PAYMENT_SECONDS the
stack's), and with --send-test-alert the notifier (`notifier`). What they share (the stack as read, the sale, a
checklist line) is `live`; the command that runs them, `run`.

Against the local system (an outputs file written by `bench.local up`), what the emulators do not model is said rather
than judged: the DLQ alarm the local runtime mutes on purpose, ECS rollouts, e-mail confirmation, the Fargate quota.
"""
