"""`python -m ops.validate`: offer a report load profile to the stack, then check its service-level goals.

Runs ops.loadtest (Locust, open loop: orders arrive at the profile's rate whatever the answers) against the stack's
syncUrl or asyncUrl, then checks: the acceptance rate (payment declines, 402, count as answered), the p95 latency,
that the load generator sent every arrival, and for the async service that the order queue drains to zero within
the capacity planner's predicted drain time (plus one payment and a tolerance). With --retry the clients retry
(with each order's own Idempotency-Key, on 503, 409, timeouts and connection errors) and the goal "no duplicated
orders" counts, per key, the order ids its answers named. Exits 1 naming every goal that failed.
Locust's HTML and CSV reports, the per-request CSV and summary.json are saved under --results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from app import aws, contract
from ops import stack
from ops.loadtest import ENDPOINTS, PROFILE_NAMES, LoadProfile, LoadResult, profile, run_load
from planning.capacity import PlanInputs, plan
from stackconfig import output_names

URL_OUTPUTS = {"sync": output_names.SYNC_URL, "async": output_names.ASYNC_URL}
DRAIN_OUTPUTS = (output_names.QUEUE_URL, output_names.WORKER_COUNT, output_names.PAYMENT_SECONDS)
OUTPUT_KEYS = (output_names.SYNC_URL, output_names.ASYNC_URL, *DRAIN_OUTPUTS)
MIN_ACCEPTANCE_PERCENT = 99.9
# The report's async answers took 69 ms at p95 (3.4), its sync ones 3,090 ms under normal load (1.4): generous
# ceilings over those, for a shared machine or a cold stack.
MAX_P95_MS = {"async": 1_000.0, "sync": 5_000.0}
DRAIN_TOLERANCE_SECONDS = 30.0
POLL_SECONDS = 1.0
PROGRESS_EVERY_SECONDS = 5.0
EMPTY_READINGS = 2  # SQS counts are approximate: the queue is empty after two zero readings in a row


@dataclass(frozen=True)
class Goal:
    name: str
    passed: bool
    measured: str
    target: str


@dataclass(frozen=True)
class Drain:
    """How the order queue emptied after the load."""

    backlog_before: int  # messages already queued when the load started
    backlog_after: int  # when the load ended
    predicted_seconds: float  # the planner's drain time for this run (+ the backlog before)
    allowed_seconds: float  # predicted + one payment + tolerance
    drained_seconds: float | None  # None: not empty within the allowed time
    left: int  # orders still queued when the check ended
    workers: int
    payment_seconds: float


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Orders waiting plus orders being paid (received, not yet deleted)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def predicted_drain(
    result: LoadResult, workers: int, workers_per_task: int, payment_seconds: float, backlog_before: int
) -> float:
    """The planner's drain time for the orders this run got accepted, plus the backlog that was already there."""
    if result.accepted == 0:
        return backlog_before * payment_seconds / workers
    (row,) = plan(
        PlanInputs(
            arrival_rate=result.accepted / result.duration_seconds,
            payment_seconds=payment_seconds,
            sale_seconds=result.duration_seconds,
            workers_per_task=workers_per_task,
            worker_levels=(workers,),
        )
    ).levels
    return row.drain_seconds + backlog_before / row.processing_rate


def wait_for_drain(sqs: Any, queue_url: str, allowed_seconds: float) -> tuple[float | None, int]:
    """Poll until the queue is empty or the allowed time is up; returns (seconds to empty or None, last depth)."""
    started = time.monotonic()
    last_report, zeros, first_zero = started, 0, 0.0
    while True:
        now = time.monotonic()
        depth = queue_depth(sqs, queue_url)
        zeros = zeros + 1 if depth == 0 else 0
        first_zero = now if zeros == 1 else first_zero
        if zeros >= EMPTY_READINGS:
            return first_zero - started, 0
        if now - started > allowed_seconds:
            return None, depth
        if now - last_report >= PROGRESS_EVERY_SECONDS:
            stack.progress(
                f"drain: {depth} orders in the queue after {now - started:.0f} s (allowed {allowed_seconds:.0f} s)"
            )
            last_report = now
        time.sleep(POLL_SECONDS)


def check_reachable(url: str) -> None:
    try:
        with urllib.request.urlopen(url + contract.HEALTH_PATH, timeout=5) as response:
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        problem = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        problem = str(getattr(error, "reason", error))
    raise stack.OpsError(f"{url}{contract.HEALTH_PATH} is not healthy ({problem}): is the service running?")


def goals(args: argparse.Namespace, result: LoadResult, drain: Drain | None) -> list[Goal]:
    answered = (result.accepted + result.declined) / result.requests if result.requests else 0.0
    p95 = result.latency_all.p95_ms
    max_p95 = args.max_p95_ms if args.max_p95_ms is not None else MAX_P95_MS[args.endpoint]
    found = [
        Goal(
            "acceptance rate",
            answered * 100 >= args.min_acceptance,
            f"{answered:.1%}" + (" (402 declines count as answered)" if result.declined else ""),
            f">= {args.min_acceptance:g} %",
        ),
        Goal("p95 latency", p95 <= max_p95, f"{p95:,.0f} ms", f"<= {max_p95:,.0f} ms"),
        Goal(
            "every arrival sent",
            result.not_sent == 0,
            f"{result.not_sent} not sent",
            "0 not sent, else raise --max-in-flight",
        ),
    ]
    if result.duplicated_orders is not None:
        found.append(
            Goal(
                "no duplicated orders",
                result.duplicated_orders == 0,
                f"{result.duplicated_orders} duplicated ({result.retries:,} retries with the same key)",
                "0 orders beyond one per Idempotency-Key",
            )
        )
    if drain is not None:
        measured = (
            f"empty after {drain.drained_seconds:.1f} s"
            if drain.drained_seconds is not None
            else f"{drain.left} orders left after {drain.allowed_seconds:.0f} s"
        )
        found.append(
            Goal(
                "queue drained",
                drain.drained_seconds is not None,
                measured,
                f"<= {drain.allowed_seconds:.1f} s (predicted {drain.predicted_seconds:.1f} s + one payment "
                f"{drain.payment_seconds:g} s + tolerance {args.drain_tolerance:g} s)",
            )
        )
    return found


def render(result: LoadResult, drain: Drain | None, checked: list[Goal], results_dir: Path, report: LoadProfile) -> str:
    r = result
    lines = [
        f"{r.endpoint} {r.url} -- profile {r.profile} (the report's Locust run: {report.users} users, "
        f"{report.spawn_rate:g}/s spawn, {report.duration_seconds:g} s, {report.rate:g} orders/s)",
        f"Offered {r.offered_rate:g} orders/s (open loop), achieved {r.achieved_rate:.1f}/s: "
        f"{r.arrivals:,} arrivals, {r.requests:,} sent, {r.not_sent:,} not sent",
    ]
    if r.note:
        lines.append(f"Note: {r.note}")
    errors = ", ".join(f"{k} x{v:,}" for k, v in r.errors.items()) or "none"
    if r.duplicated_orders is not None:
        errors += f" (after retries: {r.retries:,} retries with the same Idempotency-Key)"
    lines += [
        "",
        f"{'requests':>9} {'accepted':>9} {'declined':>9} {'errors':>7}  accepted %",
        f"{r.requests:>9,} {r.accepted:>9,} {r.declined:>9,} {sum(r.errors.values()):>7,}  {r.acceptance_rate:.1%}",
        f"errors: {errors}",
        "",
        f"{'latency ms':<10} {'count':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}",
    ]
    for label, lat in (("accepted", r.latency_accepted), ("all", r.latency_all)):
        lines.append(
            f"{label:<10} {lat.count:>7,} {lat.p50_ms:>8,.0f} {lat.p95_ms:>8,.0f} {lat.p99_ms:>8,.0f} "
            f"{lat.max_ms:>8,.0f}"
        )
    if drain is not None:
        lines += [
            "",
            f"Queue: {drain.backlog_before} before, {drain.backlog_after} when the load ended; "
            f"{drain.workers} workers x {drain.payment_seconds:g} s per payment",
        ]
    lines += ["", "Goals:"] + [
        f"  {'PASS' if g.passed else 'FAIL'}  {g.name}: {g.measured} (goal {g.target})" for g in checked
    ]
    lines.append(f"Results: {results_dir}/ (locust.html, locust_stats.csv, requests.csv, summary.json)")
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    if args.worker_tasks < 1:
        raise stack.OpsError("--worker-tasks must be at least 1")
    report = profile(args.profile, args.endpoint)
    load = replace(
        report,
        rate=args.rate or report.rate,
        duration_seconds=args.duration or report.duration_seconds,
        timeout_seconds=args.timeout or report.timeout_seconds,
    )
    url_key = URL_OUTPUTS[args.endpoint]
    outputs = stack.resolve_outputs(args, (url_key, *DRAIN_OUTPUTS) if args.endpoint == "async" else (url_key,))
    url = str(outputs[url_key]).rstrip("/")
    results_dir = args.results or Path("results") / f"validate-{datetime.now():%Y%m%d-%H%M%S}"
    check_reachable(url)
    sqs = aws.client("sqs") if args.endpoint == "async" else None
    backlog_before = queue_depth(sqs, outputs[output_names.QUEUE_URL]) if sqs else 0

    result = run_load(url, load, results_dir, max_in_flight=args.max_in_flight, retry=args.retry)

    drain = None
    if sqs is not None:
        queue_url = outputs[output_names.QUEUE_URL]
        per_task, payment_seconds = (
            int(outputs[output_names.WORKER_COUNT]),
            float(outputs[output_names.PAYMENT_SECONDS]),
        )
        workers = per_task * args.worker_tasks
        predicted = predicted_drain(result, workers, per_task, payment_seconds, backlog_before)
        allowed = predicted + payment_seconds + args.drain_tolerance
        backlog_after = queue_depth(sqs, queue_url)
        stack.progress(
            f"drain: {backlog_after} orders in the queue; predicted to drain in {predicted:.1f} s, "
            f"allowed {allowed:.1f} s"
        )
        drained, left = wait_for_drain(sqs, queue_url, allowed)
        drain = Drain(
            backlog_before=backlog_before,
            backlog_after=backlog_after,
            predicted_seconds=predicted,
            allowed_seconds=allowed,
            drained_seconds=drained,
            left=left,
            workers=workers,
            payment_seconds=payment_seconds,
        )

    checked = goals(args, result, drain)
    passed = all(g.passed for g in checked)
    summary = {
        "passed": passed,
        "goals": [asdict(g) for g in checked],
        "load": result.to_json(),
        "drain": asdict(drain) if drain else None,
        "results_dir": str(results_dir),
    }
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    stack.emit(args, summary, render(result, drain, checked, results_dir, report))
    if not passed:
        failed = "; ".join(f"{g.name} {g.measured} (goal {g.target})" for g in checked if not g.passed)
        print(f"python -m ops.validate: failed: {failed}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.validate", description=__doc__.split("\n\n")[0])
    p.add_argument("--endpoint", choices=ENDPOINTS, default="async", help="which service to load (default async)")
    p.add_argument(
        "--profile", choices=PROFILE_NAMES, default="flashsale", help="the report's load profile (default flashsale)"
    )
    p.add_argument("--rate", type=float, help="offered orders/s instead of the profile's (e.g. a scaled-down run)")
    p.add_argument("--duration", type=float, help="seconds of load instead of the profile's (whole seconds, >= 1)")
    p.add_argument("--timeout", type=float, help="client timeout, s (default the profile's 10 s)")
    p.add_argument(
        "--max-in-flight", type=int, default=0, help="cap on requests in flight (default 2 x rate x timeout)"
    )
    p.add_argument(
        "--retry",
        action="store_true",
        help="retrying clients: each order with its own Idempotency-Key, sent again with it on 503, 409, "
        "timeouts and connection errors; adds the goal: no duplicated orders",
    )
    p.add_argument(
        "--min-acceptance",
        type=float,
        default=MIN_ACCEPTANCE_PERCENT,
        metavar="PERCENT",
        help="goal: answered requests, %% (default %(default)s)",
    )
    p.add_argument(
        "--max-p95-ms",
        type=float,
        help=f"goal: p95 latency of all requests, ms (default {MAX_P95_MS['async']:g} async, "
        f"{MAX_P95_MS['sync']:g} sync)",
    )
    p.add_argument(
        "--drain-tolerance",
        type=float,
        default=DRAIN_TOLERANCE_SECONDS,
        metavar="SECONDS",
        help="async goal: seconds allowed beyond the predicted drain time (default %(default)s)",
    )
    p.add_argument(
        "--worker-tasks", type=int, default=1, help="worker tasks running; workers = workerCount x this (default 1)"
    )
    p.add_argument("--results", type=Path, metavar="DIR", help="results folder (default results/validate-<timestamp>/)")
    stack.add_output_arguments(p, OUTPUT_KEYS)
    stack.add_json_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
