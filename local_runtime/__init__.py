"""The local runtime: the AWS emulators, the deployer that applies the Pulumi program to them, the local ECS that runs
the deployed services as processes, and what AWS does by itself that the emulators do not (queue metrics, invoking
the alarm notifier). `python -m ops.local up` starts it all; the lab, the benchmarks and the tests use it.

It imports `app` (the contract) and runs the Pulumi program (`components`), never the operator commands (`ops`).
"""
