"""`python -m bench.benchmarks`: the services' CPU, memory, efficiency and latency, measured against the report's Go
system.

Everything runs for real on 127.0.0.1: the emulators with the normal stack deployed by the local deployer, the
services as task processes of the deployed task definitions, and open-loop load from ops.loadtest. Figures are per
process (psutil CPU accounting, peak RSS), so they compare with the report's one 0.25 vCPU task whatever this machine's
speed.
"""
