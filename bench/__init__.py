"""The bench: everything that runs flashsale on one machine with no AWS account, to prove and measure what ships.

- `bench.localaws`: local AWS (the emulators, the local deployer, the local ECS, the auto-scaling model, the live view);
- `bench.local`: `python -m bench.local up`, the whole system on this machine until Ctrl-C;
- `bench.lab`: `python -m bench.lab`, the lab report's experiments measured here;
- `bench.benchmarks`: `python -m bench.benchmarks`, CPU, memory and latency of the services against the report's.

The bench imports what ships; nothing that ships imports the bench (pyproject.toml's import contracts).
"""
