"""The project's one load generator: the report's Locust profiles as an open-loop arrival rate.

`run_load()` runs ops/locustfile.py headless in its own process (importing Locust monkey-patches the standard library
with gevent, which breaks asyncio, boto3 and pytest in the caller), then reads the per-request file it wrote and
returns a LoadResult. Used by `python -m ops.validate`, the local lab and the benchmarks (bench/).

Open loop: orders arrive at the profile's rate whatever the response times, so a slow service cannot throttle its own
load as the report's closed-loop Locust users did (see ops/locustfile.py).

Retrying mode (`retry=True`): every order carries its own Idempotency-Key and is sent again with it after a timeout,
a connection error, a 503 or a 409 (up to RETRY_ATTEMPTS sends), as a careful flash-sale client would; at the end each
answered key is asked once more, and a key whose answers named more than one order id is a duplicated order.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from app import contract
from ops import stack
from planning.report import REPORT_ARRIVAL_RATE, REPORT_SALE_SECONDS
from stackconfig.files import ROOT

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
ENDPOINTS = ("sync", "async")
PROFILE_NAMES = ("normal", "flashsale")
PROGRESS_SECONDS = 5.0
PROGRESS_MARK = "flashsale-progress: "  # the locustfile's progress lines; run_load forwards them to stderr
LOCUST_STARTUP_SECONDS = 60.0  # bound on Locust's own start and shutdown when waiting for the child process
ENDPOINT_PATHS = {"sync": contract.SYNC_ORDERS_PATH, "async": contract.ASYNC_ORDERS_PATH}
RETRY_ATTEMPTS = 5  # sends per order in retrying mode, the first included
RETRYABLE = ("503", "409", "timeout", "connection_error")  # answers a retrying client sends again


@dataclass(frozen=True)
class LoadProfile:
    name: str
    endpoint: str  # "sync" | "async"
    rate: float  # offered orders per second (open loop)
    duration_seconds: float
    users: int  # the report's Locust settings, for display
    spawn_rate: float
    timeout_seconds: float = contract.SERVICE_DEFAULTS.request_timeout_seconds  # the report's 10 s client timeout
    note: str = ""  # where the offered rate differs from what the report's closed-loop run could offer

    @property
    def path(self) -> str:
        return ENDPOINT_PATHS[self.endpoint]

    def check(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise stack.OpsError(f"unknown endpoint {self.endpoint!r}; choose {' or '.join(ENDPOINTS)}")
        if self.rate <= 0 or self.timeout_seconds <= 0:
            raise stack.OpsError("the rate and the timeout must be positive")
        if self.duration_seconds < 1:
            raise stack.OpsError("the duration must be at least 1 s (Locust runs whole seconds)")


_FLASH_SECONDS = REPORT_SALE_SECONDS
PROFILES: dict[tuple[str, str], LoadProfile] = {
    # Report 1.3/1.4: 5 users, 1/s spawn, 30 s; its run offered 4.90 req/s.
    ("normal", "sync"): LoadProfile("normal", "sync", rate=4.9, duration_seconds=30, users=5, spawn_rate=1),
    ("normal", "async"): LoadProfile("normal", "async", rate=4.9, duration_seconds=30, users=5, spawn_rate=1),
    # Report 3.4: 60 users, 10/s spawn, 60 s; its run offered 60.23 req/s, the sale's 60 orders/s.
    ("flashsale", "async"): LoadProfile(
        "flashsale", "async", rate=REPORT_ARRIVAL_RATE, duration_seconds=_FLASH_SECONDS, users=60, spawn_rate=10
    ),
    # Report 1.5: 20 users, 10/s spawn, 60 s.
    ("flashsale", "sync"): LoadProfile(
        "flashsale",
        "sync",
        rate=20,
        duration_seconds=_FLASH_SECONDS,
        users=20,
        spawn_rate=10,
        note="The report's 20 closed-loop users could not have offered its 20 req/s: with 8.2 s answers Little's law "
        "allows 20 / 8.2 = 2.4 req/s. This run offers the 20 orders/s the report meant, as an open-loop arrival "
        "rate.",
    ),
}


def profile(name: str, endpoint: str) -> LoadProfile:
    try:
        return PROFILES[(name, endpoint)]
    except KeyError:
        raise stack.OpsError(
            f"no load profile {name!r} for endpoint {endpoint!r}; profiles: "
            f"{', '.join(PROFILE_NAMES)}; endpoints: {', '.join(ENDPOINTS)}"
        ) from None


def default_max_in_flight(rate: float, timeout_seconds: float) -> int:
    """Generous: twice the requests in flight if every answer took the whole timeout (Little's law, L = λW)."""
    return max(20, math.ceil(2 * rate * timeout_seconds))


# --- One row per arrival, written by the locustfile and read here (the lab plots latency from it) ----------------


@dataclass(frozen=True)
class RequestRecord:
    offset_s: float  # seconds since the load started (the arrival schedule)
    sent_at: float  # epoch seconds
    latency_ms: float | None  # None when not sent
    status: int  # HTTP status; 0 for a timeout, a connection error or not sent
    outcome: str  # accepted | declined | <status> | timeout | connection_error | not_sent
    order_id: str
    key: str = ""  # retrying mode: the order's Idempotency-Key
    attempts: int = 1  # sends of this order (retrying mode: up to RETRY_ATTEMPTS)
    confirmed_order_id: str = ""  # retrying mode: the order id the key named when asked again after the load


REQUEST_FIELDS = tuple(RequestRecord.__dataclass_fields__)


def outcome_of(status: int, error: BaseException | None) -> str:
    if 200 <= status < 300:
        return "accepted"
    if status == 402:  # the payment gateway declined: an answer, not a system failure (report 1.4)
        return "declined"
    if status:
        return str(status)
    cause = getattr(error, "original", error)  # geventhttpclient wraps socket errors in RetriesExceeded
    if isinstance(cause, TimeoutError) or type(cause).__name__ == "Timeout":  # gevent.Timeout is no TimeoutError
        return "timeout"
    return "connection_error"


def read_records(path: Path) -> list[RequestRecord]:
    with open(path, newline="") as file:
        return [
            RequestRecord(
                offset_s=float(row["offset_s"]),
                sent_at=float(row["sent_at"]),
                latency_ms=float(row["latency_ms"]) if row["latency_ms"] else None,
                status=int(row["status"]),
                outcome=row["outcome"],
                order_id=row["order_id"],
                key=row["key"],
                attempts=int(row["attempts"]),
                confirmed_order_id=row["confirmed_order_id"],
            )
            for row in csv.DictReader(file)
        ]


def duplicated_orders(records: Iterable[RequestRecord]) -> int:
    """Orders beyond the first per key: distinct order ids among each key's answers (its own and the later ask)."""
    ids: dict[str, set[str]] = {}
    for r in records:
        if r.key:
            ids.setdefault(r.key, set()).update(i for i in (r.order_id, r.confirmed_order_id) if i)
    return sum(len(found) - 1 for found in ids.values() if len(found) > 1)


# --- The result ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value that at least p % of the values do not exceed."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0.0


def latency(values: Iterable[float]) -> Latency:
    ordered = sorted(values)
    return Latency(
        count=len(ordered),
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1] if ordered else 0.0,
    )


@dataclass(frozen=True)
class LoadResult:
    profile: str
    endpoint: str
    url: str
    offered_rate: float  # orders per second the schedule fired
    achieved_rate: float  # requests actually sent per second over the sending window
    duration_seconds: float
    arrivals: int  # = requests + not_sent
    requests: int  # = accepted + declined + sum(errors)
    not_sent: int  # arrivals that found the in-flight cap full
    accepted: int  # 2xx
    declined: int  # 402
    errors: dict[str, int]  # "504", "503", "timeout", "connection_error", ...
    acceptance_rate: float  # accepted / requests
    latency_accepted: Latency
    latency_all: Latency  # every answered request, timeouts at the timeout
    retries: int = 0  # retrying mode: sends beyond each order's first
    duplicated_orders: int | None = None  # retrying mode: orders beyond the first per Idempotency-Key
    note: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    records: list[RequestRecord], load: LoadProfile, url: str, files: dict[str, str] | None = None, retry: bool = False
) -> LoadResult:
    sent = [r for r in records if r.outcome != "not_sent"]
    counts = Counter(r.outcome for r in sent)
    accepted, declined = counts.pop("accepted", 0), counts.pop("declined", 0)
    offsets = sorted(r.offset_s for r in sent)
    window = offsets[-1] - offsets[0] if len(offsets) > 1 else 0.0
    return LoadResult(
        profile=load.name,
        endpoint=load.endpoint,
        url=url,
        offered_rate=load.rate,
        achieved_rate=round((len(offsets) - 1) / window, 3) if window > 0 else 0.0,
        duration_seconds=load.duration_seconds,
        arrivals=len(records),
        requests=len(sent),
        not_sent=len(records) - len(sent),
        accepted=accepted,
        declined=declined,
        errors=dict(sorted(counts.items())),
        acceptance_rate=accepted / len(sent) if sent else 0.0,
        latency_accepted=latency(r.latency_ms for r in sent if r.outcome == "accepted" and r.latency_ms is not None),
        latency_all=latency(r.latency_ms for r in sent if r.latency_ms is not None),
        retries=sum(r.attempts - 1 for r in sent),
        duplicated_orders=duplicated_orders(sent) if retry else None,
        note=load.note,
        files=files or {},
    )


# --- Running Locust -------------------------------------------------------------------------------------------------


def run_load(
    base_url: str,
    profile: LoadProfile,
    results_dir: Path,
    *,
    time_scale: float = 1.0,
    max_in_flight: int = 0,
    retry: bool = False,
) -> LoadResult:
    """Offer `profile.rate × time_scale` orders a second to base_url for the profile's duration; wait for the answers
    (in retrying mode, for the retries too, then ask each answered key again).

    Locust's HTML, CSV and JSON reports, its log and requests.csv (one row per arrival) land in results_dir.
    """
    load = replace(profile, rate=profile.rate * time_scale)
    load.check()
    results_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "html": results_dir / "locust.html",
        "stats_csv": results_dir / "locust_stats.csv",
        "locust_json": results_dir / "locust.json",
        "requests_csv": results_dir / "requests.csv",
        "log": results_dir / "locust.log",
    }
    files["requests_csv"].unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        base_url,
        # One user carries the whole arrival rate: the report's users/spawn rate would only add a ramp-up.
        "--users",
        "1",
        "--spawn-rate",
        "1",
        "--run-time",
        f"{round(load.duration_seconds)}s",
        "--stop-timeout",
        "0",
        "--exit-code-on-error",
        "0",
        "--only-summary",
        "--csv",
        str(results_dir / "locust"),
        "--html",
        str(files["html"]),
        "--json-file",
        str(files["locust_json"].with_suffix("")),
        "--endpoint",
        load.endpoint,
        "--rate",
        repr(load.rate),
        "--timeout",
        repr(load.timeout_seconds),
        "--max-in-flight",
        str(max_in_flight or default_max_in_flight(load.rate, load.timeout_seconds)),
        "--requests-file",
        str(files["requests_csv"]),
        "--progress-seconds",
        str(PROGRESS_SECONDS),
        *(["--retry"] if retry else []),
    ]
    stack.progress(
        f"load: {load.rate:g} orders/s to {base_url}{load.path} for {load.duration_seconds:g} s "
        f"(open loop; Locust log {files['log']})"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "FLASHSALE_"))}  # only our flags
    with (
        open(files["log"], "w") as log,
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as child,
    ):
        for line in child.stdout or ():
            log.write(line)
            if line.startswith(PROGRESS_MARK):
                stack.progress("load: " + line[len(PROGRESS_MARK) :].rstrip())
        code = child.wait(timeout=LOCUST_STARTUP_SECONDS)
    if code != 0 or not files["requests_csv"].exists():
        tail = files["log"].read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise stack.OpsError(f"Locust failed (exit code {code}): {tail[0]}; see {files['log']}")
    return summarize(
        read_records(files["requests_csv"]), load, base_url, {k: str(v) for k, v in files.items()}, retry=retry
    )
