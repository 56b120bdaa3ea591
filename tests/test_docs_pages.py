"""The docs pages the measuring tools write (`python -m bench.lab --docs`, `python -m bench.benchmarks --docs`): each
names its command and commit, says not to edit it, and holds the tables the tool prints, from a synthetic run (no
emulators)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import docs
from bench.benchmarks import __main__ as benchmarks
from bench.benchmarks.table import markdown, peer_rows, rows
from bench.lab import report as lab_report
from bench.lab import run as lab
from bench.lab.analysis import LevelMeasure, LevelWindow
from bench.lab.args import LabArgs
from bench.lab.report import LabResult, LevelResult, Notification, PartResult
from bench.lab.watch import Sample
from ops import loadtest
from planning import capacity
from tests.test_benchmarks import _result as benchmark_result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMMIT = "0123456789ab"


def _load(profile: loadtest.LoadProfile, requests: int, accepted: int, errors: dict[str, int]) -> PartResult:
    latency = loadtest.Latency(count=requests, p50_ms=3000.0, p95_ms=3300.0, p99_ms=3330.0, max_ms=3333.0)
    result = loadtest.LoadResult(
        profile=profile.name,
        endpoint=profile.endpoint,
        url="http://127.0.0.1:1",
        offered_rate=profile.rate * 3,
        achieved_rate=profile.rate * 3,
        duration_seconds=profile.duration_seconds / 3,
        arrivals=requests,
        requests=requests,
        not_sent=0,
        accepted=accepted,
        declined=0,
        errors=errors,
        acceptance_rate=accepted / requests,
        latency_accepted=latency,
        latency_all=latency,
    )
    records = [
        loadtest.RequestRecord(
            offset_s=i / 60,
            sent_at=1000 + i / 60,
            latency_ms=1 + i % 7,
            status=202,
            outcome="accepted",
            order_id=str(i),
        )
        for i in range(requests)
    ]
    return PartResult(profile=profile, result=result, records=records)


def lab_result() -> LabResult:
    """A lab run with Part I under the flash sale and one Part V level of 20 workers, as the lab builds it."""
    sync = _load(loadtest.profile("flashsale", "sync"), 1185, 40, {"504": 1142})
    flash = _load(loadtest.profile("flashsale", "async"), 3547, 3547, {})
    window = LevelWindow(sale_start=1000, sale_end=1020, payment_seconds=1, observe_end=1030, extrapolated=True)
    samples = [Sample(1000 + t, min(160 * t, 3160), 20, 5.0, 60.0) for t in range(31)]
    measure = LevelMeasure(
        workers=20,
        extrapolated=True,
        processed_during_sale=380,
        queue_at_end=3160,
        peak=3160,
        drain_seconds=158.0,
        saturated=True,
        rate=20.0,
        cpu_percent=5.0,
        rss_mb=60.0,
    )
    (prediction,) = capacity.plan(capacity.PlanInputs(worker_levels=(20,))).levels
    alert = Notification(
        at=1007,
        since=1000,
        subject="[WARNING] ALARM: flashsale-normal-expected-wait-warning",
        body="What it measures: seconds a new order waits before a worker starts it",
    )
    level = LevelResult(
        workers=20,
        part=flash,
        prediction=prediction,
        measure=measure,
        window=window,
        samples=samples,
        notifications=[alert],
    )
    return LabResult(
        args=LabArgs(results=Path("unused")),
        parts=[sync],
        levels=[level],
        periods={"x": 20},
        feed_seconds=10,
        sync_slots=2,
        quick_changes=(),
    )


def test_the_lab_writes_its_docs_page_with_its_tables_and_plots_under_a_do_not_edit_header(tmp_path: Path) -> None:
    result = lab_result()
    files = lab_report.write_docs(result, tmp_path / "docs", "python -m bench.lab --time-scale 3 --docs", COMMIT)
    page = (tmp_path / "docs" / docs.LAB_PAGE).read_text()
    first = page.splitlines()[0]
    assert "python -m bench.lab --time-scale 3 --docs" in first and COMMIT in first and "Do not edit" in first, first
    # The same tables as the lab's own report.md, rows and all: nothing on the page is written by hand.
    k = result.args.time_scale
    for line in lab_report.part_five(result.levels, k) + lab_report.part_three(result.parts[0], result.levels[0], k):
        assert line in page, line
    assert "flashsale-normal-expected-wait-warning" in page
    for name in ("lab-queue-depth.png", "lab-latency.png"):
        assert (tmp_path / "docs" / name).read_bytes().startswith(PNG_MAGIC)
        assert f"]({name})" in page  # linked from the page, beside it
    assert files["docs"] == str(tmp_path / "docs" / docs.LAB_PAGE)


def test_the_lab_names_the_command_that_reproduces_its_figures() -> None:
    ns = lab.parser().parse_args(
        ["--quick", "--task-startup-seconds", "30", "--price", "sqs_request=1e-6", "--docs", "/tmp/d"]
    )
    ns.time_scale = 2.0
    assert lab.invocation(ns) == (
        "python -m bench.lab --quick --time-scale 2 --task-startup-seconds 30 --price sqs_request=1e-6 --docs"
    )
    assert lab.parser().parse_args(["--docs"]).docs == docs.DOCS  # bare --docs: the checkout's docs/
    assert lab.parser().parse_args([]).docs is None


def test_the_benchmarks_docs_page_holds_the_printed_tables_row_for_row(tmp_path: Path) -> None:
    result = benchmark_result(cpu_ms_per_order=3.0) | {
        "quick": False,
        "machine": {"cpus": 2, "load_average_1m": 2.2},
        "seconds": 376.0,
    }
    benchmarks.write_docs(argparse.Namespace(quick=False, receiver_only=False, docs=tmp_path), result)
    page = (tmp_path / docs.BENCHMARKS_PAGE).read_text()
    assert result["docs"] == str(tmp_path / docs.BENCHMARKS_PAGE)
    first = page.splitlines()[0]
    at_commit = docs.commit().split()[0]
    assert "python -m bench.benchmarks --docs" in first and at_commit in first and "Do not edit" in first, first
    assert page.endswith(markdown(result))  # the page is the header, then the tables
    mark = {True: "yes", False: "NO", None: ""}
    table = rows(result)
    assert any(row.met is False for row in table) and any(row.met for row in table)
    for row in table:
        assert f"| {row.figure} | {row.report} | {row.ours} | {row.goal} | {mark[row.met]} |" in page, row
    for peer in peer_rows(result):
        assert f"| {peer.figure} | {' | '.join(peer.values.values())} |" in page, peer


def test_the_benchmarks_name_the_command_that_reproduces_their_figures() -> None:
    args = argparse.Namespace(quick=True, receiver_only=True, docs=Path("docs"))
    assert benchmarks.invocation(args) == "python -m bench.benchmarks --quick --receiver-only --docs"
    assert (
        benchmarks.invocation(argparse.Namespace(quick=False, receiver_only=False))
        == "python -m bench.benchmarks --docs"
    )


def test_a_generated_page_names_the_checkouts_commit() -> None:
    stamp = docs.commit()
    assert stamp.split()[0] != "unknown" and len(stamp.split()[0]) == 12, stamp
