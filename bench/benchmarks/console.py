"""`python -m bench.benchmarks.console [--json]`: what the live view costs the machine while a flash sale runs.

Starts the local system as `bench.local up` does (normal stack, 200 workers per task, 3 s payments, the flash-sale
alarm profile), then measures, each as the process's or thread's own CPU accounting:
1. unwatched: the view's server thread over IDLE_SECONDS with nobody polling;
2. per sample: the emulator's (ministack's) extra CPU to answer one sample's calls, from SAMPLES samples asked for
   back to back against the same window without them;
3. during a sale: the report's 60 orders/s for SALE_SECONDS (Locust, open loop) with the page open in headless
   Chromium (the browser test's): the view's thread, the browser's processes, ministack and the whole local
   runtime process, in % of one core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from bench.benchmarks.bed import cpu_seconds
from bench.browser import chromium
from bench.localaws.console import MIN_SAMPLE_SECONDS, STATE_PATH, Console
from bench.localaws.system import LocalArgs, LocalSystem
from ops import loadtest, stack
from planning.report import REPORT_ARRIVAL_RATE
from stackconfig import output_names

IDLE_SECONDS = 10.0
SAMPLES = 20
SALE_SECONDS = 30.0
CONFIG = {"workerCount": 200, "alarmProfile": "flashsale"}


@dataclass(frozen=True)
class ConsoleCost:
    unwatched_percent: float  # of one core: the view's thread, nobody polling
    ministack_ms_per_sample: float  # the emulator's CPU to answer one sample's calls
    sale_rate: float  # orders/s offered
    sale_accepted: int
    view_percent: float  # the view's thread during the sale, polled every second by the page
    view_self_reported_percent: float  # what the page showed at the end (console.cpu_percent)
    browser_percent: float  # headless Chromium showing the page (every process of it)
    ministack_percent: float  # for scale: the emulator during the sale
    runtime_percent: float  # for scale: the whole local runtime process (balancers, ECS loop, feeder, view)
    load_average_1m: float


def _ministack(system_pid: int) -> psutil.Process:
    for child in psutil.Process(system_pid).children(recursive=True):
        if any("ministack" in part for part in child.cmdline()):
            return child
    raise stack.OpsError("no ministack process under the local runtime")


def _tree_cpu(root: psutil.Process) -> float:
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            continue
    return total


def measure(directory: Path) -> ConsoleCost:
    me = psutil.Process()
    with LocalSystem(LocalArgs(config=CONFIG, directory=directory)) as system:
        console = system.console
        if console is None:
            raise stack.OpsError("the local system serves no live view")
        emulator = _ministack(me.pid)
        stack.progress(f"unwatched: {IDLE_SECONDS:g} s")
        view, emulated, started = console.cpu_seconds(), cpu_seconds(emulator.pid), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_seconds = time.monotonic() - started
        unwatched = (console.cpu_seconds() - view) / idle_seconds
        emulator_idle = (cpu_seconds(emulator.pid) - emulated) / idle_seconds
        stack.progress(f"per sample: {SAMPLES} samples, one every {MIN_SAMPLE_SECONDS:g} s")
        emulated, started = cpu_seconds(emulator.pid), time.monotonic()
        with httpx.Client(base_url=console.url.rstrip("/"), timeout=10) as client:
            for _ in range(SAMPLES):
                client.get(STATE_PATH).raise_for_status()
                time.sleep(MIN_SAMPLE_SECONDS)
        polled_seconds = time.monotonic() - started
        extra = cpu_seconds(emulator.pid) - emulated - emulator_idle * polled_seconds
        stack.progress(
            f"sale: {REPORT_ARRIVAL_RATE:g} orders/s for {SALE_SECONDS:g} s with the page open in headless Chromium"
        )
        return _sale(system, console, emulator, directory, unwatched, max(0.0, extra) / SAMPLES)


def _sale(
    system: LocalSystem,
    console: Console,
    emulator: psutil.Process,
    directory: Path,
    unwatched: float,
    per_sample: float,
) -> ConsoleCost:
    profile = loadtest.LoadProfile(
        "console-benchmark", "async", rate=REPORT_ARRIVAL_RATE, duration_seconds=SALE_SECONDS, users=1, spawn_rate=1
    )
    me = psutil.Process()
    with chromium(directory / "chromium") as page:
        page.get(console.url)
        browser = psutil.Process(page.service.process.pid)
        time.sleep(3)  # the page's first updates: its start-up is not the sale's cost
        before = (console.cpu_seconds(), _tree_cpu(browser), cpu_seconds(emulator.pid), cpu_seconds(me.pid))
        started = time.monotonic()
        result = loadtest.run_load(system.outputs[output_names.ASYNC_URL], profile, directory / "sale")
        elapsed = time.monotonic() - started
        after = (console.cpu_seconds(), _tree_cpu(browser), cpu_seconds(emulator.pid), cpu_seconds(me.pid))
        shown = str(page.find_element("id", "console-cpu").text).rstrip(" %")
    view, browser_cpu, emulated, runtime = ((a - b) / elapsed for a, b in zip(after, before, strict=True))
    return ConsoleCost(
        unwatched_percent=round(100 * unwatched, 2),
        ministack_ms_per_sample=round(1000 * per_sample, 2),
        sale_rate=profile.rate,
        sale_accepted=result.accepted,
        view_percent=round(100 * view, 2),
        view_self_reported_percent=float(shown) if shown.replace(".", "", 1).isdigit() else float("nan"),
        browser_percent=round(100 * browser_cpu, 1),
        ministack_percent=round(100 * emulated, 1),
        runtime_percent=round(100 * runtime, 1),
        load_average_1m=round(psutil.getloadavg()[0], 2),
    )


def render(cost: ConsoleCost) -> str:
    return "\n".join(
        [
            "The live view's cost, in % of one core (2 cores here):",
            f"  unwatched (nobody polling):                   {cost.unwatched_percent:.2f} %",
            f"  emulator CPU per sample (3 calls):            {cost.ministack_ms_per_sample:.2f} ms, at 1 sample/s "
            f"{cost.ministack_ms_per_sample / 10:.2f} %",
            f"  during a {cost.sale_rate:g} orders/s sale ({cost.sale_accepted:,} accepted), page open and polling:",
            f"    the view's thread:                          {cost.view_percent:.2f} % "
            f"(the page said {cost.view_self_reported_percent:g} %)",
            f"    headless Chromium showing the page:         {cost.browser_percent:.1f} %",
            f"    for scale: ministack {cost.ministack_percent:.1f} %, the local runtime process "
            f"{cost.runtime_percent:.1f} % (load average {cost.load_average_1m:g})",
        ]
    )


def command(args: argparse.Namespace) -> int:
    directory = args.logs or Path(tempfile.mkdtemp(prefix="flashsale-console-bench-"))
    cost = measure(directory.resolve())
    stack.emit(args, asdict(cost), render(cost))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.console", description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, help="where logs go (default: a temp dir)")
    stack.add_json_argument(parser)
    return stack.run(parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
