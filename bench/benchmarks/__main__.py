"""`python -m bench.benchmarks [--quick] [--receiver-only] [--json]`: run every benchmark against a fresh local ministack and
print the tables (ours against the report's Go system and the goals; flashsale's worker beside its peers, Celery and
the report's design ported literally, measured in the same run). `--receiver-only` runs the backend ceiling and the
receiver's loads alone (60/s, capacity, 3x capacity), the same way, in about a third of the time.

Exits 0 when the benchmarks ran (goals missed are results, shown as NO in the table); 1 with a one-line error when
they could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.benchmarks import backend, receiver, worker
from bench.benchmarks.bed import Bed
from bench import docs
from bench.benchmarks.table import markdown, peer_rows, render, render_peers, rows
from ops import stack
from bench.localaws.deployer import DeployError, Endpoints, deploy
from bench.localaws.emulators import Emulator, EmulatorError
from bench.localaws.tasks import TaskError

WORKER_LEVELS = (1, 20, 200, 1000)
PEER_LEVELS = (200, 1000)  # the report's task limit, and the most flashsale's worker is measured at
PEERS = (worker.CELERY, worker.REPORT_THREADS)


@dataclass(frozen=True)
class Plan:
    worker_rounds: int  # each level drains rounds x workers orders, for flashsale's worker and the peers alike
    payment_seconds: float
    ceiling_seconds: float
    receiver_seconds: float  # at the report's 60 orders/s; capacity and overload runs take half each


FULL = Plan(worker_rounds=5, payment_seconds=3.0, ceiling_seconds=10, receiver_seconds=60)
QUICK = Plan(worker_rounds=1, payment_seconds=3.0, ceiling_seconds=3, receiver_seconds=10)


def run_all(plan: Plan, logs: Path, quick: bool, receiver_only: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    with Emulator("ministack", log_path=logs / "ministack.log") as emulator, \
            Emulator("moto", log_path=logs / "moto.log") as control_plane:
        deployment = deploy("normal", Endpoints(emulator.endpoint_url, control_plane.endpoint_url))
        if not deployment.ok:
            raise DeployError(deployment.summary())
        bed = Bed(emulator, deployment, logs)
        stack.progress("backend ceiling: the receiver's batched calls from a plain boto3 client")
        ceiling = backend.backend_ceiling(bed, plan.ceiling_seconds)
        levels = []
        for workers in () if receiver_only else WORKER_LEVELS:
            stack.progress(f"worker: {workers} concurrent payments, {plan.worker_rounds * workers} orders")
            levels.append(worker.run_level(bed, workers, plan.worker_rounds, plan.payment_seconds))
        peers = []
        for contender in () if receiver_only else PEERS:
            for workers in PEER_LEVELS:
                stack.progress(f"peer {contender.name}: {workers} concurrent payments, "
                               f"{plan.worker_rounds * workers} orders")
                peers.append(worker.run_level(bed, workers, plan.worker_rounds, plan.payment_seconds, contender))
        stack.progress("receiver: the report's 60 orders/s, then its capacity, then 3x that")
        receivers = receiver.run(bed, seconds=plan.receiver_seconds, ceiling_rate=ceiling.rate)
    return {
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "backend": asdict(ceiling),
        "worker": [asdict(level) for level in levels],
        "peers": [asdict(level) for level in peers],
        "receiver": asdict(receivers),
        "receiver_to_backend": round(receivers.capacity.accepted_rate / ceiling.rate, 3),
        "seconds": round(time.monotonic() - started, 1),
        "logs": str(logs),
    }


def command(args: argparse.Namespace) -> int:
    logs = args.logs or Path(tempfile.mkdtemp(prefix="flashsale-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    try:
        result = run_all(QUICK if args.quick else FULL, logs, args.quick, args.receiver_only)
    except (EmulatorError, DeployError, TaskError, worker.WorkerBenchError) as e:
        raise stack.OpsError(str(e)) from e
    table, peers = rows(result), peer_rows(result)
    result["table"] = [row.to_json() for row in table]
    result["peer_table"] = [row.to_json() for row in peers]
    write_docs(args, result)
    cpus, load = result["machine"]["cpus"], result["machine"]["load_average_1m"]
    peer_text = "" if args.receiver_only else (
        f"The worker beside its peers (same emulator, same {result['worker'][0]['payment_seconds']:g} s payment, same "
        f"orders; in brackets: the peer's figure / flashsale's):\n{render_peers(peers)}\n\n")
    text = (f"{render(table)}\n\n{peer_text}"
            f"{cpus} CPUs, 1-minute load average {load:g} at the end (other work on the machine "
            f"makes the figures noisy); {result['seconds']:g} s; logs in {logs}")
    stack.emit(args, result, text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks", description="Benchmark the services against the report's Go system on a local ministack.")
    parser.add_argument("--quick", action="store_true", help="shorter runs (under 3 minutes on 2 cores), for CI")
    parser.add_argument("--receiver-only", action="store_true",
                        help="only the backend ceiling and the receiver (no worker levels, no peers)")
    parser.add_argument("--logs", type=Path, help="where service, emulator and Locust logs go (default: a temp dir)")
    parser.add_argument("--docs", type=Path, nargs="?", const=docs.DOCS, metavar="DIR",
                        help=f"also write the tables as the docs' generated page {docs.BENCHMARKS_PAGE} (default DIR: "
                             "the checkout's docs/)")
    stack.add_json_argument(parser)
    return stack.run(parser, command, argv)


def write_docs(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """--docs: both tables as the docs' generated page (the same rows as printed); its path goes in the result."""
    if args.docs is not None:
        result["docs"] = str(docs.write_page(args.docs / docs.BENCHMARKS_PAGE, invocation(args), markdown(result)))


def invocation(args: argparse.Namespace) -> str:
    """The command line that reproduces this run's figures, for the header of the docs page."""
    flags = ("quick", "receiver_only", "worker_only")
    options = [f"--{flag.replace('_', '-')}" for flag in flags if getattr(args, flag, False)]
    return " ".join(["python -m bench.benchmarks", *options, "--docs"])


if __name__ == "__main__":
    sys.exit(main())
