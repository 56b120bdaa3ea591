"""ops.loadtest: the arrival rate is open loop (a slow service does not slow the sender), and the counts add up."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from app import contract
from ops import loadtest
from ops.loadtest import PROFILES, LoadResult, RequestRecord, run_load, summarize
from tests.helpers import System, system  # noqa: F401  (the fixture)

# The load generator's arrival rates are asserted: other tests' load beside it would starve it (make test runs these
# alone, after the rest).
pytestmark = pytest.mark.serial

# One payment slot of 1 s: the sync service answers at most 1 order a second, and each waits up to 3 s.
SLOW_SYNC = {
    contract.ENV_PAYMENT_SECONDS: "1",
    contract.ENV_PAYMENT_SLOTS: "1",
    contract.ENV_REQUEST_TIMEOUT_SECONDS: "3",
}
# 4 s, not 3: Locust's start-up takes up to ~1 s of the run time on a loaded machine (20 of 30 requests were sent once)
RATE, SECONDS = 10.0, 4.0


def assert_counts_add_up(result: LoadResult) -> None:
    assert result.accepted + result.declined + sum(result.errors.values()) == result.requests
    assert result.requests + result.not_sent == result.arrivals
    with open(result.files["requests_csv"], newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == result.arrivals
    assert sum(row["outcome"] == "accepted" for row in rows) == result.accepted


def test_a_slow_service_does_not_slow_the_arrivals(system: System, tmp_path: Path) -> None:  # noqa: F811
    sync = system.start("sync", **SLOW_SYNC)
    load = replace(PROFILES[("flashsale", "sync")], rate=RATE, duration_seconds=SECONDS)

    result = run_load(sync.url, load, tmp_path)

    # A closed loop of 20 users waiting ~3 s each would send ~7/s; open loop keeps the schedule.
    assert result.achieved_rate == pytest.approx(RATE, rel=0.15)
    assert result.requests >= 0.7 * RATE * SECONDS  # Locust's own start-up eats a little of the run time
    assert result.not_sent == 0
    assert result.accepted <= SECONDS + 3 + 1  # one payment a second while sending, plus the 3 s timeout window
    assert result.errors.get("504", 0) > 0
    assert result.latency_all.p95_ms >= 1000
    assert result.acceptance_rate == result.accepted / result.requests
    assert_counts_add_up(result)
    for name in ("html", "stats_csv", "locust_json", "requests_csv"):
        assert Path(result.files[name]).stat().st_size > 0, name


def test_arrivals_beyond_the_in_flight_cap_are_counted_not_queued(system: System, tmp_path: Path) -> None:  # noqa: F811
    sync = system.start("sync", **SLOW_SYNC)
    load = replace(PROFILES[("flashsale", "sync")], rate=RATE, duration_seconds=SECONDS)

    result = run_load(sync.url, load, tmp_path, max_in_flight=3)

    assert result.arrivals >= 0.7 * RATE * SECONDS  # the schedule went on while the cap was full
    assert result.not_sent > 0
    assert result.requests < 0.5 * RATE * SECONDS  # only as many as the cap and the slow answers let through
    assert_counts_add_up(result)


def test_time_scale_multiplies_the_rate(system: System, tmp_path: Path) -> None:  # noqa: F811
    receiver = system.start("receiver")
    load = replace(PROFILES[("normal", "async")], duration_seconds=2)

    result = run_load(receiver.url, load, tmp_path, time_scale=4)

    assert result.offered_rate == pytest.approx(4 * 4.9)
    assert result.accepted == result.requests > 0
    assert_counts_add_up(result)


def test_summary_of_known_records() -> None:
    records = [
        RequestRecord(i * 0.5, 1000 + i * 0.5, latency, status, loadtest.outcome_of(status, None), "x")
        for i, (latency, status) in enumerate([(10.0, 202), (20.0, 202), (30.0, 402), (3000.0, 504), (10000.0, 0)])
    ]
    records.append(RequestRecord(2.5, 1002.5, None, 0, "not_sent", ""))

    result = summarize(records, PROFILES[("normal", "async")], "http://127.0.0.1:1")

    assert (result.arrivals, result.requests, result.not_sent) == (6, 5, 1)
    assert (result.accepted, result.declined, result.errors) == (2, 1, {"504": 1, "connection_error": 1})
    assert result.acceptance_rate == pytest.approx(0.4)
    assert result.achieved_rate == pytest.approx(2.0)  # 5 sends 0.5 s apart
    assert (result.latency_accepted.p50_ms, result.latency_accepted.max_ms) == (10.0, 20.0)
    assert (result.latency_all.p50_ms, result.latency_all.p95_ms) == (30.0, 10000.0)


def test_outcomes_name_timeouts_apart_from_connection_errors() -> None:
    class Wrapped(Exception):
        original = TimeoutError("timed out")

    assert loadtest.outcome_of(201, None) == "accepted"
    assert loadtest.outcome_of(402, None) == "declined"
    assert loadtest.outcome_of(503, None) == "503"
    assert loadtest.outcome_of(0, Wrapped()) == "timeout"
    assert loadtest.outcome_of(0, ConnectionRefusedError()) == "connection_error"


def test_profiles_are_the_reports() -> None:
    flash_async, flash_sync = PROFILES[("flashsale", "async")], PROFILES[("flashsale", "sync")]
    assert (flash_async.rate, flash_async.users, flash_async.spawn_rate, flash_async.duration_seconds) == (
        60,
        60,
        10,
        60,
    )
    assert (flash_sync.rate, flash_sync.users) == (20, 20) and "Little's law" in flash_sync.note
    assert all(
        (p.users, p.spawn_rate, p.duration_seconds, p.rate) == (5, 1, 30, 4.9)
        for (name, _), p in PROFILES.items()
        if name == "normal"
    )
    assert all(p.timeout_seconds == 10 for p in PROFILES.values())
