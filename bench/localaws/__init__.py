"""Local AWS: the emulators, the deployer that applies the Pulumi program to them, the local ECS that runs the
deployed services as processes, and what AWS does by itself that the emulators do not (queue metrics, invoking the
alarm notifier, auto-scaling). `python -m bench.local up` starts it all; the lab, the benchmarks and the tests use it.

It imports what ships (`app`, the Pulumi program in `components`, `stackconfig`); nothing that ships imports it
(pyproject.toml's import contracts).
"""
