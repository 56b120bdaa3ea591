"""`python -m bench.benchmarks.receiver_ab SOURCE... [--seconds S] [--rounds N] [--json]`: the receiver's CPU per
accepted
order, source tree against source tree (e.g. an export of main and this checkout), runs alternating so that other
work on the machine hits them alike.

Each run starts the receiver of one tree (`python -m app receiver`, cwd = that tree, with the deployed receiver
task's environment) against the normal stack deployed once to the local emulators,
warms it up, then offers the report's 60 orders/s for S seconds (open loop, from this process) and divides the
receiver process's own CPU by the orders it accepted. `--key` sends every order with its own Idempotency-Key (a
tree that ignores the header is measured as without it). The median over the rounds is printed per tree.

Export a tree to compare with: `git archive main | tar -x -C /tmp/main-tree`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from app import contract
from bench.benchmarks.bed import SAMPLE_ORDER, cpu_seconds, deployed_task_env
from bench.localaws.emulators import free_port
from ops import stack
from planning.report import REPORT_ARRIVAL_RATE

RATE = REPORT_ARRIVAL_RATE
WARM_UP_ORDERS = 50


async def offer(url: str, seconds: float, keyed: bool) -> int:
    """RATE orders a second for `seconds`, each sent on schedule whatever the answers; returns how many got 202."""
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=httpx.Limits(max_connections=64)) as client:

        async def one() -> bool:
            headers = {contract.IDEMPOTENCY_KEY_HEADER: str(uuid.uuid4())} if keyed else None
            response = await client.post(contract.ASYNC_ORDERS_PATH, json=SAMPLE_ORDER, headers=headers)
            return response.status_code == 202

        loop, tasks = asyncio.get_running_loop(), []
        start = loop.time()
        for n in range(int(RATE * seconds)):
            await asyncio.sleep(max(0.0, start + n / RATE - loop.time()))
            tasks.append(asyncio.create_task(one()))
        return sum(await asyncio.gather(*tasks))


def run_once(source: Path, env: dict[str, str], seconds: float, keyed: bool, log: Path) -> float:
    port = free_port()
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "app", "receiver", "--host", "127.0.0.1", "--port", str(port)],
            cwd=source,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + contract.HEALTH_PATH).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise stack.OpsError(f"the receiver of {source} did not start; see {log}") from None
                time.sleep(0.1)
        asyncio.run(offer(url, WARM_UP_ORDERS / RATE, keyed))
        before = cpu_seconds(child.pid)
        accepted = asyncio.run(offer(url, seconds, keyed))
        cpu = cpu_seconds(child.pid) - before
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
    if accepted == 0:
        raise stack.OpsError(f"the receiver of {source} accepted nothing; see {log}")
    return 1000 * cpu / accepted


def command(args: argparse.Namespace) -> int:
    sources = [Path(s).resolve() for s in args.sources]
    for source in sources:
        if not (source / "app" / "receiver.py").is_file():
            raise stack.OpsError(f"{source} holds no app/receiver.py")
    logs = Path(tempfile.mkdtemp(prefix="flashsale-ab-"))
    figures: dict[str, list[float]] = {str(s): [] for s in sources}
    with deployed_task_env("receiver", logs) as env:
        for n in range(args.rounds):
            for i, source in enumerate(sources):
                stack.progress(f"round {n + 1}/{args.rounds}: {source}")
                figures[str(source)].append(
                    round(run_once(source, env, args.seconds, args.key, logs / f"receiver-{i}.log"), 3)
                )
    result = {
        "rate": RATE,
        "seconds": args.seconds,
        "keyed": args.key,
        "cpu_ms_per_accepted": {s: {"median": statistics.median(v), "rounds": v} for s, v in figures.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    text = "\n".join(
        f"{s}: {statistics.median(v):.2f} ms CPU per accepted order (rounds: {', '.join(f'{x:.2f}' for x in v)})"
        for s, v in figures.items()
    )
    stack.emit(
        args,
        result,
        f"{text}\n{RATE:g} orders/s for {args.seconds:g} s per run"
        f"{', each with an Idempotency-Key' if args.key else ''}; 1-minute load average "
        f"{result['load_average_1m']:g}",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.receiver_ab", description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", help="source trees, each holding app/")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of load per run (default 30)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per tree, alternating (default 3)")
    parser.add_argument("--key", action="store_true", help="send each order with its own Idempotency-Key")
    stack.add_json_argument(parser)
    return stack.run(parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
