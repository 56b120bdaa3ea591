"""`python -m ops.validate`: passes against the async service, fails (naming the goal) against the sync service under
the flash-sale profile, scaled down (short payments, a lower rate, a few seconds) so the runs stay fast."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app import contract
from ops import validate
from ops.loadtest import PROFILES, RequestRecord, summarize
from stackconfig import output_names
from tests.helpers import System, system  # noqa: F401  (the fixture)

# The load generator's arrival rates are asserted: other tests' load beside it would starve it (make test runs these
# alone, after the rest).
pytestmark = pytest.mark.serial

PAYMENT = "0.2"
WORKERS = 10  # 10 / 0.2 s = 50 orders/s, above the offered 20/s: no backlog should build
SCALED_DOWN = ["--profile", "flashsale", "--rate", "20", "--duration", "3"]


def outputs_file(system: System, tmp_path: Path, **extra: Any) -> Path:  # noqa: F811
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(system.outputs | extra))
    return path


def test_validate_passes_against_the_async_service(
    system: System,
    tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver = system.start("receiver", **{contract.ENV_PAYMENT_SECONDS: PAYMENT})
    system.start("worker", **{contract.ENV_PAYMENT_SECONDS: PAYMENT, contract.ENV_WORKER_COUNT: str(WORKERS)})
    outputs = outputs_file(
        system,
        tmp_path,
        **{
            output_names.ASYNC_URL: receiver.url,
            output_names.WORKER_COUNT: WORKERS,
            output_names.PAYMENT_SECONDS: float(PAYMENT),
        },
    )
    results = tmp_path / "results"

    code = validate.main(
        [
            "--endpoint",
            "async",
            *SCALED_DOWN,
            "--outputs",
            str(outputs),
            "--results",
            str(results),
            "--drain-tolerance",
            "10",
            "--json",
        ]
    )

    captured = capsys.readouterr()
    assert captured.out, captured.err
    summary = json.loads(captured.out)
    assert code == 0, summary["goals"]
    assert summary["passed"] and {g["name"] for g in summary["goals"]} == {
        "acceptance rate",
        "p95 latency",
        "every arrival sent",
        "queue drained",
    }
    assert summary["load"]["accepted"] == summary["load"]["requests"] >= 40
    assert summary["drain"]["drained_seconds"] is not None and system.queue_counts() == (0, 0)
    assert json.loads((results / "summary.json").read_text()) == summary
    for name in ("locust.html", "locust_stats.csv", "requests.csv"):
        assert (results / name).stat().st_size > 0, name


def test_validate_fails_against_the_sync_service(
    system: System,
    tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    sync = system.start("sync", **{contract.ENV_PAYMENT_SECONDS: PAYMENT, contract.ENV_REQUEST_TIMEOUT_SECONDS: "2"})

    code = validate.main(
        ["--endpoint", "sync", *SCALED_DOWN, "--sync-url", sync.url, "--results", str(tmp_path / "results")]
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert "failed: acceptance rate" in err  # one payment slot: 5 orders/s of the 20/s offered, the rest get 504
    assert "FAIL  acceptance rate" in out and "504" in out
    assert "Little's law" in out  # the note on the report's sync flash-sale rate


def test_a_queue_that_does_not_drain_fails(
    system: System,
    tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    receiver = system.start("receiver")  # no worker: accepted orders stay queued
    outputs = outputs_file(
        system,
        tmp_path,
        **{
            output_names.ASYNC_URL: receiver.url,
            output_names.WORKER_COUNT: WORKERS,
            output_names.PAYMENT_SECONDS: float(PAYMENT),
        },
    )

    code = validate.main(
        [
            "--endpoint",
            "async",
            "--profile",
            "normal",
            "--duration",
            "1",
            "--outputs",
            str(outputs),
            "--results",
            str(tmp_path / "results"),
            "--drain-tolerance",
            "1",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert "failed: queue drained" in err and "acceptance" not in err
    assert "orders left after" in out


def test_missing_outputs_and_an_unreachable_service_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert validate.main(["--endpoint", "async", "--async-url", "http://127.0.0.1:9"]) == 1
    assert "--queue-url" in capsys.readouterr().err

    assert validate.main(["--endpoint", "sync", "--sync-url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "is not healthy" in err and "Traceback" not in err


def test_predicted_drain_is_the_planners() -> None:
    """The report's 1-worker run: 60 orders/s for 60 s, 3 s payments -> 3,580 queued, 2.98 h to drain (5.7)."""
    records = [RequestRecord(i / 60, 0, 5.0, 202, "accepted", "") for i in range(3600)]
    result = replace(summarize(records, PROFILES[("flashsale", "async")], "http://x"), duration_seconds=60)

    assert validate.predicted_drain(
        result, workers=1, workers_per_task=1, payment_seconds=3, backlog_before=0
    ) / 3600 == pytest.approx(2.98, abs=0.01)
    assert validate.predicted_drain(result, workers=200, workers_per_task=20, payment_seconds=3, backlog_before=0) == 0
    assert validate.predicted_drain(
        result, workers=200, workers_per_task=20, payment_seconds=3, backlog_before=200
    ) == pytest.approx(3)  # 200 old orders at 66.7/s


def test_retrying_clients_through_a_receiver_stall_make_no_duplicated_orders(
    system: System,
    tmp_path: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--retry: 50 ms client timeouts and a 0.4 s receiver stall in the middle of the run force retries with the same
    key; the goal 'no duplicated orders' holds (each key's answers, and the key asked again after the load, name one
    order id)."""
    receiver = system.start("receiver", **{contract.ENV_PAYMENT_SECONDS: PAYMENT})
    system.start("worker", **{contract.ENV_PAYMENT_SECONDS: PAYMENT, contract.ENV_WORKER_COUNT: str(WORKERS)})
    outputs = outputs_file(
        system,
        tmp_path,
        **{
            output_names.ASYNC_URL: receiver.url,
            output_names.WORKER_COUNT: WORKERS,
            output_names.PAYMENT_SECONDS: float(PAYMENT),
        },
    )
    process = receiver.process
    assert process is not None

    def stall_the_receiver() -> None:
        process.send_signal(signal.SIGSTOP)
        time.sleep(0.4)  # the stall itself, not a wait
        process.send_signal(signal.SIGCONT)

    stall = threading.Timer(2.5, stall_the_receiver)
    stall.start()
    try:
        code = validate.main(
            [
                "--endpoint",
                "async",
                "--profile",
                "flashsale",
                "--rate",
                "20",
                "--duration",
                "5",
                "--timeout",
                "0.05",
                "--retry",
                "--outputs",
                str(outputs),
                "--results",
                str(tmp_path / "results"),
                "--drain-tolerance",
                "10",
                "--json",
            ]
        )
    finally:
        stall.join()
    summary = json.loads(capsys.readouterr().out)
    goals = {g["name"]: g for g in summary["goals"]}
    assert goals["no duplicated orders"]["passed"], goals
    assert summary["load"]["duplicated_orders"] == 0 and summary["load"]["retries"] > 0
    assert summary["load"]["accepted"] == summary["load"]["requests"]  # every order got its 202 in the end
    assert code == 0, summary["goals"]


def test_duplicated_orders_are_counted_per_key() -> None:
    records = [
        RequestRecord(0, 0, 5.0, 202, "accepted", "o1", key="k1", attempts=2, confirmed_order_id="o1"),
        RequestRecord(0, 0, 5.0, 202, "accepted", "o2", key="k2", attempts=1, confirmed_order_id="o3"),
        RequestRecord(0, 0, 5.0, 202, "accepted", "o4"),
    ]
    result = summarize(records, PROFILES[("flashsale", "async")], "http://x", retry=True)
    assert (result.duplicated_orders, result.retries) == (1, 1)
    assert summarize(records, PROFILES[("flashsale", "async")], "http://x").duplicated_orders is None
