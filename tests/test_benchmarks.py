"""`python -m bench.benchmarks`: the quick run produces every figure, sane; the table judges goals from the figures; a
measurement that fails is a row that says why, and only our own services' failures fail the run."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import contract
from bench.benchmarks import worker
from bench.benchmarks.__main__ import (
    PEER_LEVELS,
    PEERS,
    QUICK,
    WORKER_LEVELS,
    invocation,
    measure,
    parser,
    report,
    unfinished_ours,
)
from bench.benchmarks.bed import Bed
from bench.benchmarks.receiver import failures
from bench.benchmarks.table import peer_rows, render, render_peers, rows
from bench.localaws.deployer import Deployment
from bench.localaws.emulators import Emulator
from stackconfig.files import ROOT

LOAD_FIELDS = (
    "offered_rate",
    "accepted_rate",
    "accepted",
    "requests",
    "cpu_ms_per_accepted",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "inside_p99_ms",
    "shed_share",
    "failures",
    "alive",
    "records_per_call",
    "events_per_call",
)
LEVEL_FIELDS = (
    "contender",
    "workers",
    "payment_seconds",
    "orders",
    "drain_seconds",
    "efficiency",
    "cpu_ms_per_order",
    "log_bytes_per_order",
    "peak_rss_mb",
    "emulator_cpu_share",
)


def _load(**overrides: Any) -> dict[str, Any]:
    return {
        "offered_rate": 60.0,
        "accepted_rate": 60.0,
        "accepted": 600,
        "requests": 600,
        "cpu_ms_per_accepted": 1.5,
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "p99_ms": 12.0,
        "inside_p99_ms": 6.0,
        "shed_share": 0.0,
        "failures": 0,
        "alive": True,
        "records_per_call": 1.0,
        "events_per_call": 1.0,
    } | overrides


def _level(contender: str, workers: int, **overrides: Any) -> dict[str, Any]:
    return {
        "contender": contender,
        "workers": workers,
        "payment_seconds": 3.0,
        "orders": 2 * workers,
        "drain_seconds": 6.1,
        "efficiency": 0.98,
        "cpu_ms_per_order": 1.5,
        "log_bytes_per_order": 700.0,
        "peak_rss_mb": 60.0,
        "emulator_cpu_share": 0.3,
    } | overrides


def _result(**worker_overrides: Any) -> dict[str, Any]:
    return {
        "worker": [_level("flashsale", n, **worker_overrides) for n in WORKER_LEVELS],
        "worker_no_wait_metric": [
            _level("flashsale-no-wait-metric", n, cpu_ms_per_order=1.4, log_bytes_per_order=520.0)
            for n in WORKER_LEVELS
        ],
        "peers": [
            _level(peer.name, n, cpu_ms_per_order=4.5, efficiency=0.49, peak_rss_mb=90.0)
            for peer in PEERS
            for n in PEER_LEVELS
        ],
        "backend": {"orders": 6000, "seconds": 3.0, "threads": 8, "orders_per_call": 25, "rate": 2000.0},
        "receiver_to_backend": 0.35,
        "receiver": {
            "report_rate": _load(),
            "report_rate_plain_http": _load(cpu_ms_per_accepted=1.2),
            "capacity": _load(offered_rate=4000.0, accepted_rate=700.0, cpu_ms_per_accepted=0.6),
            "overload": _load(offered_rate=2100.0, accepted_rate=650.0, shed_share=0.6, p99_ms=120.0),
            "retry_after": True,
        },
    }


def test_the_table_marks_each_missed_goal_and_only_those() -> None:
    assert all(row.met in (True, None) for row in rows(_result()))
    slow = {row.figure for row in rows(_result(cpu_ms_per_order=2.5, efficiency=0.9)) if row.met is False}
    assert slow == {f"worker {n}: CPU per processed order" for n in WORKER_LEVELS} | {
        "worker 200: processed rate / (workers / payment time)",
        "worker 1000: processed rate / (workers / payment time)",
    }


def test_the_wait_metric_row_puts_its_cost_beside_the_same_worker_without_it() -> None:
    result = _result()
    table = {row.figure: row for row in rows(result)}
    row = table["worker 200: with the wait metric / without (CPU, log per order)"]
    assert (row.ours, row.met) == ("1.50 / 1.40 ms, 700 / 520 B", None)
    result["worker_no_wait_metric"][0] = {"contender": "flashsale-no-wait-metric", "workers": 1, "error": "exited"}
    table = {row.figure: row for row in rows(result)}
    assert table["worker 1: with the wait metric / without (CPU, log per order)"].ours == "did not finish: exited"
    assert unfinished_ours(result) == ["worker without the wait metric at 1 workers"]


def test_the_receiver_goals_are_issue_12s() -> None:
    result = _result()
    result["receiver"]["report_rate"]["cpu_ms_per_accepted"] = 2.1
    result["receiver"]["report_rate_plain_http"]["cpu_ms_per_accepted"] = 2.1  # shown, not judged: no TLS
    result["receiver"]["capacity"] |= {"cpu_ms_per_accepted": 1.1, "accepted_rate": 590.0}
    missed = {row.figure for row in rows(result) if row.met is False}
    assert missed == {
        "receiver: CPU per accepted order (60/s, TLS)",
        "receiver: CPU per accepted order (capacity)",
        "receiver capacity (one process)",
    }
    # The capacity goal is 600/s, or 90 % of the emulator's ceiling when that is lower.
    result["backend"]["rate"] = 600.0
    assert "receiver capacity (one process)" not in {row.figure for row in rows(result) if row.met is False}


def test_only_503_among_5xx_is_allowed_under_overload() -> None:
    assert failures({"503": 40, "422": 1}) == 0
    assert failures({"503": 40, "500": 1, "502": 2, "timeout": 3, "connection_error": 4}) == 10


def test_the_peer_table_puts_each_peer_beside_flashsale_with_the_ratio() -> None:
    table = peer_rows(_result())
    assert [row.figure for row in table] == [
        f"{n} workers: {figure}"
        for n in PEER_LEVELS
        for figure in ("CPU per processed order", "processed rate / (workers / payment time)", "peak RSS")
    ]
    cpu = table[0].values
    assert cpu["flashsale"] == "1.50 ms" and all(cpu[p.name] == "4.50 ms (3.00x)" for p in PEERS)
    assert table[1].values["celery"] == "49.0% (0.50x)" and table[2].values["report-threads"] == "90 MB (1.50x)"
    assert "Celery (gevent pool)" in render_peers(table).splitlines()[0]


def test_a_receiver_that_crashes_or_sheds_without_retry_after_fails_the_overload_rows() -> None:
    result = _result()
    result["receiver"]["overload"] = _load(offered_rate=2100.0, accepted_rate=650.0, shed_share=0.6, alive=False)
    result["receiver"]["retry_after"] = False
    missed = {row.figure for row in rows(result) if row.met is False}
    assert missed == {"overload: shed with 503 (+ Retry-After)", "overload: timeouts, 5xx but 503, crash"}
    assert "DEAD" in render(rows(result)) and "MISSING" in render(rows(result))


def test_a_measurement_that_did_not_finish_is_one_row_with_why_and_the_others_are_still_judged() -> None:
    result = _result()
    result["worker"][-1] = {"contender": "flashsale", "workers": 1000, "error": "flashsale-1000 did not drain"}
    result["peers"][-1] = {"contender": "report-threads", "workers": 1000, "error": "worker exited"}
    result["receiver"] = {"error": "ConnectError: refused"}
    table = {row.figure: row for row in rows(result)}
    assert table["worker 1000"].ours == "did not finish: flashsale-1000 did not drain"
    assert table["worker 1000"].met is False and table["receiver"].ours == "did not finish: ConnectError: refused"
    assert not any(figure.startswith(("worker 1000:", "receiver:", "overload:")) for figure in table)
    assert table["worker 200: CPU per processed order"].met is True  # the finished levels keep their rows
    peers = {row.figure: row.values for row in peer_rows(result)}
    assert peers["1000 workers"] == {
        "flashsale": "did not finish: flashsale-1000 did not drain",
        "report-threads": "did not finish: worker exited",
    }
    assert peers["1000 workers: peak RSS"] == {"flashsale": "-", "celery": "90 MB", "report-threads": "-"}
    assert peers["200 workers: peak RSS"]["celery"] == "90 MB (1.50x)" and "200 workers" not in peers
    assert "did not finish: worker exited" in render_peers(peer_rows(result))


# The quick plan cut to its smallest: one order, one level, no receiver (the bench's own emulators not needed).
SMALLEST = dataclasses.replace(QUICK, payment_seconds=0.3, worker_levels=(1,), peer_levels=(1,), receiver=False)
# The report's thread peer given a worker count it refuses: it exits while starting.
REFUSING_PEER = dataclasses.replace(
    worker.REPORT_THREADS,
    command=lambda workers: ("env", f"{contract.ENV_WORKER_COUNT}=0", *worker.REPORT_THREADS.command(workers)),
)


def _printed(result: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict[str, Any], str]:
    """(exit status, the tables, the JSON, stderr) of one result."""
    status = report(parser().parse_args([]), result)
    text = capsys.readouterr().out
    assert report(parser().parse_args(["--json"]), result) == status
    printed = capsys.readouterr()
    return status, text, json.loads(printed.out), printed.err


def test_levels_pick_the_worker_levels_and_bad_ones_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args(["--levels", "200,1,200"]).levels == (200, 1)
    assert parser().parse_args([]).levels is None
    for bad in ("0", "1,x", ""):
        with pytest.raises(SystemExit) as exit_:
            parser().parse_args(["--levels", bad])
        assert exit_.value.code == 2
        assert "--levels" in capsys.readouterr().err
    assert invocation(parser().parse_args(["--quick", "--levels", "1,200"])).endswith("--quick --levels 1,200 --docs")


def test_a_peer_that_fails_is_a_row_and_the_run_still_reports_and_exits_0(
    ministack: Emulator,
    deployment: Deployment,
    aws_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = measure(Bed(ministack, deployment, tmp_path), SMALLEST, peers=(REFUSING_PEER,))
    status, text, data, err = _printed(result, capsys)
    assert status == 0, err
    (peer,) = data["peers"]
    assert peer["contender"] == "report-threads" and peer["workers"] == 1
    assert "exited with code 1 while starting" in peer["error"] and "WORKER_COUNT" in peer["error"]
    assert "error" not in data["worker"][0] and data["worker"][0]["orders"] == 1
    assert {"figure": "1 workers", "report-threads": f"did not finish: {peer['error']}"} in data["peer_table"]
    assert f"did not finish: {peer['error']}" in text and "worker 1: CPU per processed order" in text


def test_a_failure_of_our_own_worker_fails_the_run_after_reporting(
    ministack: Emulator,
    deployment: Deployment,
    aws_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refused = dataclasses.replace(SMALLEST, payment_seconds=-1.0, peer_levels=())  # the worker refuses it
    status, text, data, err = _printed(measure(Bed(ministack, deployment, tmp_path), refused), capsys)
    assert status == 1
    why = data["worker"][0]["error"]
    assert "worker exited with code 2 while starting" in why and "PAYMENT_SECONDS must be within" in why
    assert data["table"] == [
        {"figure": "worker 1", "report": "-", "ours": f"did not finish: {why}", "goal": "-", "met": False}
    ]
    assert "did not finish" in text
    assert "flashsale's worker at 1 workers, worker without the wait metric at 1 workers did not finish" in err


def _sane_load(load: dict[str, Any]) -> None:
    assert set(LOAD_FIELDS) <= set(load)
    assert load["requests"] > 0 and 0 < load["accepted"] <= load["requests"]
    assert 0 < load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"] < 60_000
    assert 0 < load["inside_p99_ms"] < 60_000
    assert 0 < load["cpu_ms_per_accepted"] < 1_000
    assert 0 <= load["shed_share"] <= 1 and load["failures"] >= 0


# The smallest level and the report's task limit, where the peers run too. The 1000-worker levels cost more CPU than
# the rest together; `make soak` and the docs page run them (`--levels` is the only difference).
LEVELS = (1, 200)
CHOSEN_PEER_LEVELS = tuple(n for n in LEVELS if n in PEER_LEVELS)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_reports_every_figure(tmp_path: Any) -> None:
    levels = ",".join(map(str, LEVELS))
    run = subprocess.run(
        [sys.executable, "-m", "bench.benchmarks", "--quick", "--levels", levels, "--json", "--logs", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["quick"] is True and result["machine"]["cpus"] >= 1

    assert result["backend"]["rate"] > 0 and result["backend"]["orders"] > 0
    assert [level["workers"] for level in result["worker"]] == list(LEVELS)
    assert [level["workers"] for level in result["worker_no_wait_metric"]] == list(LEVELS)
    for on, off in zip(result["worker"], result["worker_no_wait_metric"], strict=True):
        assert on["log_bytes_per_order"] > off["log_bytes_per_order"] > 0  # the EMF members, and only with it
    assert [(p["contender"], p["workers"]) for p in result["peers"]] == [
        (c.name, n) for c in PEERS for n in CHOSEN_PEER_LEVELS
    ]
    # A peer may not finish on a loaded machine (the thread port at 1000 workers): that is a result about the peer.
    unfinished = {(p["contender"], p["workers"]): p["error"] for p in result["peers"] if "error" in p}
    for level in result["worker"] + result["worker_no_wait_metric"] + [p for p in result["peers"] if "error" not in p]:
        assert set(LEVEL_FIELDS) <= set(level)
        assert level["orders"] == QUICK.worker_rounds * level["workers"]
        # Each slot pays `rounds` times in a row, so the drain cannot beat the ideal (log stamps are to the ms).
        assert level["drain_seconds"] >= QUICK.worker_rounds * QUICK.payment_seconds - 0.01
        assert 0 < level["efficiency"] <= 1.01
        assert 0 < level["cpu_ms_per_order"] < 1_000
        assert 20 < level["peak_rss_mb"] < 2_000
        assert 0 <= level["emulator_cpu_share"] <= 2  # of one core; ministack is one process

    receiver = result["receiver"]
    for name in ("report_rate", "report_rate_plain_http", "capacity", "overload"):
        _sane_load(receiver[name])
    assert receiver["report_rate"]["offered_rate"] == receiver["report_rate_plain_http"]["offered_rate"] == 60
    assert math.isclose(receiver["overload"]["offered_rate"], 3 * receiver["capacity"]["accepted_rate"], rel_tol=0.01)
    assert receiver["overload"]["alive"] is True and isinstance(receiver["retry_after"], bool)
    assert result["receiver_to_backend"] > 0
    assert result["backend"]["orders_per_call"] == 25
    for name in ("report_rate", "capacity"):  # the batched calls carried orders in both runs
        assert receiver[name]["records_per_call"] >= 1 and receiver[name]["events_per_call"] >= 1

    table = result["table"]
    assert len(table) == len(rows(result))
    figures = {row["figure"]: row for row in table}
    tls = figures["receiver: CPU per accepted order (60/s, TLS)"]
    plain = figures["receiver: CPU per accepted order (60/s, plain HTTP)"]
    assert tls["met"] in (True, False) and plain["met"] is None  # the goal is judged over TLS, as deployed
    assert plain["ours"] == f"{receiver['report_rate_plain_http']['cpu_ms_per_accepted']:.2f} ms"
    assert all(row["ours"] and row["met"] in (True, False, None) for row in table)
    assert any(row["report"] == "3.6 ms" for row in table)  # the report's Go worker, beside ours
    peer_table = result["peer_table"]
    assert len(peer_table) == len(peer_rows(result)) == 3 * len(CHOSEN_PEER_LEVELS) + len({n for _, n in unfinished})
    for row in peer_table:
        workers, _, figure = row["figure"].partition(" workers")
        assert not figure or row["flashsale"].endswith(("ms", "%", "MB")), row
        for peer in PEERS:
            why = unfinished.get((peer.name, int(workers)))
            if not figure:  # the level's row of the contenders that did not finish
                assert row.get(peer.name) == (f"did not finish: {why}" if why else None), row
            else:
                assert row[peer.name] == "-" if why else row[peer.name].endswith("x)"), row
