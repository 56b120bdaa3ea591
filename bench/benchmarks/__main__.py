"""`python -m bench.benchmarks [--quick] [--receiver-only | --worker-only] [--levels N,...] [--json]`: run every
benchmark against a fresh local ministack and print the tables (ours against the report's Go system and the goals;
flashsale's worker beside its peers, Celery and the report's design ported literally, measured in the same run).
`--receiver-only` runs the backend ceiling and the receiver's loads alone (60/s over plain HTTP and over TLS,
capacity, 3x capacity), the same way, in about a third of the time; `--worker-only` runs the worker levels and the
peers alone; `--levels` picks the worker levels (the peers run at those of theirs picked).

Each measurement stands alone: the backend ceiling, each level of flashsale's worker, each peer at each level, and
the receiver (its loads, one after the other on one process). One that fails (does not drain, crashes, times out,
any error) is a row `did not finish: <why>` in its table and `"error": "<why>"` in its place in the JSON, and the
run goes on to print every table. The receiver is not run when the backend ceiling did not finish (its capacity
search is sized from it); it is then a row that says so.

Exit status:
  0  the tables are printed and flashsale's own services were measured: every planned level of its worker and
     the receiver finished. Goals missed are results (NO in the table), and so is a peer that did not finish.
  1  the tables are printed, but a measurement of flashsale's own services (a level of its worker, or the
     receiver, also when it was not run for want of the backend ceiling) did not finish, whatever the cause:
     the run lacks our figures. stderr names them in one line.
  1  the benchmarks could not start (the emulators, the deployment): a one-line error, no tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import docs
from bench.benchmarks import backend, receiver, worker
from bench.benchmarks.bed import Bed
from bench.benchmarks.table import markdown, peer_rows, render, render_peers, rows
from bench.localaws.deployer import DeployError, Endpoints, deploy
from bench.localaws.emulators import Emulator, EmulatorError
from bench.localaws.tasks import TaskError
from ops import stack

PROG = "python -m bench.benchmarks"
WORKER_LEVELS = (1, 20, 200, 1000)
PEER_LEVELS = (200, 1000)  # the report's task limit, and the most flashsale's worker is measured at
PEERS = (worker.CELERY, worker.REPORT_THREADS)
# Errors whose message is written for people: a table shows the message alone; anything else gets its type too.
TOLD = (worker.WorkerBenchError, backend.CeilingError, TaskError, stack.OpsError)


@dataclass(frozen=True)
class Plan:
    worker_rounds: int  # each level drains rounds x workers orders, for flashsale's worker and the peers alike
    payment_seconds: float
    ceiling_seconds: float
    receiver_seconds: float  # at the report's 60 orders/s; capacity and overload runs take half each
    worker_levels: tuple[int, ...] = WORKER_LEVELS  # concurrent payments of flashsale's worker, one level each
    peer_levels: tuple[int, ...] = PEER_LEVELS  # each peer's levels: some of worker_levels (the table's ratios)
    receiver: bool = True  # the backend ceiling and the receiver's loads


FULL = Plan(worker_rounds=5, payment_seconds=3.0, ceiling_seconds=10, receiver_seconds=60)
QUICK = Plan(worker_rounds=1, payment_seconds=3.0, ceiling_seconds=3, receiver_seconds=10)


def attempt(label: str, identity: dict[str, Any], measurement: Callable[[], Any]) -> dict[str, Any]:
    """The measurement's figures, or `identity` and `"error": "<why>"` when it raised: whatever stops one
    measurement is that measurement's result, and the others still run."""
    try:
        return asdict(measurement())
    except Exception as error:  # noqa: BLE001 - any failure of this one measurement, by design; Ctrl-C ends the run
        why = " ".join(str(error).split()) or "no message"
        why = why if isinstance(error, TOLD) else f"{type(error).__name__}: {why}"
        stack.progress(f"{label} did not finish: {why}")
        return identity | {"error": why}


def _level(bed: Bed, plan: Plan, contender: worker.Contender, workers: int) -> dict[str, Any]:
    label = f"{contender.name} at {workers} workers"
    stack.progress(f"{label}: {plan.worker_rounds * workers} orders")
    return attempt(
        label,
        {"contender": contender.name, "workers": workers},
        lambda: worker.run_level(bed, workers, plan.worker_rounds, plan.payment_seconds, contender),
    )


def measure(bed: Bed, plan: Plan, peers: tuple[worker.Contender, ...] = PEERS) -> dict[str, Any]:
    """Every measurement of the plan on the bed, as the JSON result (see `rows` and `peer_rows` for the tables)."""
    started = time.monotonic()
    result: dict[str, Any] = {"plan": asdict(plan)}
    if plan.receiver:
        stack.progress("backend ceiling: the receiver's batched calls from a plain boto3 client")
        result["backend"] = attempt("backend ceiling", {}, lambda: backend.backend_ceiling(bed, plan.ceiling_seconds))
    result["worker"] = [_level(bed, plan, worker.FLASHSALE, workers) for workers in plan.worker_levels]
    # The same levels without the buyers' wait metric: what the metric costs is the difference.
    result["worker_no_wait_metric"] = [
        _level(bed, plan, worker.FLASHSALE_NO_WAIT_METRIC, workers) for workers in plan.worker_levels
    ]
    result["peers"] = [_level(bed, plan, contender, workers) for contender in peers for workers in plan.peer_levels]
    if plan.receiver:
        ceiling = result["backend"]
        receivers: dict[str, Any]
        if "error" in ceiling:
            receivers = {
                "error": "not run: its capacity search is sized from the backend ceiling, which did not finish"
            }
        else:
            stack.progress(
                "receiver: the report's 60 orders/s over plain HTTP, then over TLS, then its capacity, then 3x that"
            )
            receivers = attempt(
                "receiver", {}, lambda: receiver.run(bed, seconds=plan.receiver_seconds, ceiling_rate=ceiling["rate"])
            )
        result["receiver"] = receivers
        result["receiver_to_backend"] = (
            None if "error" in receivers else round(receivers["capacity"]["accepted_rate"] / ceiling["rate"], 3)
        )
    return result | {
        "machine": {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)},
        "seconds": round(time.monotonic() - started, 1),
        "logs": str(bed.logs),
    }


def run_all(plan: Plan, logs: Path) -> dict[str, Any]:
    """Start the emulators, deploy the normal stack to them, and measure."""
    with (
        Emulator("ministack", log_path=logs / "ministack.log") as emulator,
        Emulator("moto", log_path=logs / "moto.log") as control_plane,
    ):
        deployment = deploy("normal", Endpoints(emulator.endpoint_url, control_plane.endpoint_url))
        if not deployment.ok:
            raise DeployError(deployment.summary())
        return measure(Bed(emulator, deployment, logs), plan)


def unfinished_ours(result: dict[str, Any]) -> list[str]:
    """flashsale's own measurements that did not finish (they decide the exit status; the peers' do not)."""
    return [
        f"worker{' without the wait metric' if level['contender'] != 'flashsale' else ''} at {level['workers']} workers"
        for level in result["worker"] + result.get("worker_no_wait_metric", [])
        if "error" in level
    ] + (["receiver"] if "error" in result.get("receiver", {}) else [])


def report(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """Print the tables (or the JSON, with them) and return the exit status (see the module's docstring)."""
    table, peers = rows(result), peer_rows(result)
    result["table"] = [row.to_json() for row in table]
    result["peer_table"] = [row.to_json() for row in peers]
    write_docs(args, result)
    cpus, load = result["machine"]["cpus"], result["machine"]["load_average_1m"]
    peer_text = (
        ""
        if not peers
        else (
            f"The worker beside its peers (same emulator, same {result['plan']['payment_seconds']:g} s payment, same "
            f"orders; in brackets: the peer's figure / flashsale's):\n{render_peers(peers)}\n\n"
        )
    )
    text = (
        f"{render(table)}\n\n{peer_text}"
        f"{cpus} CPUs, 1-minute load average {load:g} at the end (other work on the machine "
        f"makes the figures noisy); {result['seconds']:g} s; logs in {result['logs']}"
    )
    stack.emit(args, result, text)
    ours = unfinished_ours(result)
    if ours:
        print(f"{PROG}: error: flashsale's {', '.join(ours)} did not finish; see the table", file=sys.stderr)
        return 1
    return 0


def command(args: argparse.Namespace) -> int:
    logs = args.logs or Path(tempfile.mkdtemp(prefix="flashsale-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    plan = QUICK if args.quick else FULL
    if args.receiver_only:
        plan = dataclasses.replace(plan, worker_levels=(), peer_levels=())
    if args.worker_only:
        plan = dataclasses.replace(plan, receiver=False)
    if args.levels is not None:
        if args.receiver_only:
            raise stack.OpsError("--levels picks the worker levels, and --receiver-only runs none")
        plan = dataclasses.replace(
            plan, worker_levels=args.levels, peer_levels=tuple(n for n in args.levels if n in plan.peer_levels)
        )
    try:
        result = {"quick": args.quick} | run_all(plan, logs)
    except (EmulatorError, DeployError) as e:
        raise stack.OpsError(str(e)) from e
    return report(args, result)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs (under 3 minutes on 2 cores), for CI")
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--receiver-only",
        action="store_true",
        help="only the backend ceiling and the receiver (no worker levels, no peers)",
    )
    only.add_argument(
        "--worker-only",
        action="store_true",
        help="only the worker levels and the peers (no backend ceiling, no receiver)",
    )
    parser.add_argument(
        "--levels",
        type=levels,
        metavar="N,...",
        help=f"the worker levels to measure (default {','.join(map(str, WORKER_LEVELS))}); the peers run at those "
        f"of {','.join(map(str, PEER_LEVELS))} among them",
    )
    parser.add_argument("--logs", type=Path, help="where service, emulator and Locust logs go (default: a temp dir)")
    parser.add_argument(
        "--docs",
        type=Path,
        nargs="?",
        const=docs.DOCS,
        metavar="DIR",
        help=f"also write the tables as the docs' generated page {docs.BENCHMARKS_PAGE} (default DIR: "
        "the checkout's docs/)",
    )
    stack.add_json_argument(parser)
    return parser


def levels(text: str) -> tuple[int, ...]:
    """`--levels 1,200`: distinct positive worker counts, in the order given."""
    try:
        chosen = tuple(dict.fromkeys(int(part) for part in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected worker counts separated by commas, e.g. 1,200; got {text!r}"
        ) from None
    if not chosen or min(chosen) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be 1 or more; got {text!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


def write_docs(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """--docs: both tables as the docs' generated page (the same rows as printed); its path goes in the result."""
    if args.docs is not None:
        result["docs"] = str(docs.write_page(args.docs / docs.BENCHMARKS_PAGE, invocation(args), markdown(result)))


def invocation(args: argparse.Namespace) -> str:
    """The command line that reproduces this run's figures, for the header of the docs page."""
    flags = ("quick", "receiver_only", "worker_only")
    options = [f"--{flag.replace('_', '-')}" for flag in flags if getattr(args, flag, False)]
    if getattr(args, "levels", None):
        options.append(f"--levels {','.join(map(str, args.levels))}")
    return " ".join(["python -m bench.benchmarks", *options, "--docs"])


if __name__ == "__main__":
    sys.exit(main())
