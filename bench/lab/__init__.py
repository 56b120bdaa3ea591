"""The lab: `python -m bench.lab` reproduces the lab report's experiments on the local system (bench.lab.run), and
writes the report's tables beside its own measurements (bench.lab.report)."""
