"""`python -m bench.benchmarks.servers [--requests N] [--json]`: the HTTP server candidates for the web roles, compared.

Each candidate serves the real receiver app (the normal stack deployed to the local emulators, the receiver task's
environment) in its own process: `ours` (uvicorn's
httptools protocol with app.http_server's limits, what the services run), plain uvicorn with httptools or h11,
hypercorn, and granian (candidates that are not installed are skipped; only `ours` is a project dependency). For each:
the server's CPU per request (its process tree's own accounting over N POSTs answered 422 on 8 keep-alive
connections: parsed and validated, no backend call, so the figure is HTTP handling plus the app's cheapest path),
and what it does with each slow or hostile client of issue 11, probed over raw sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from app import contract
from bench.benchmarks.bed import deployed_task_env
from bench.localaws.emulators import free_port
from ops import stack
from stackconfig.files import ROOT

PROBE_SECONDS = 3.0  # how long a probe waits for the server to close a stalled connection
TIMEOUT_SETTING = 1  # seconds: the header timeout given to the candidates that have one
CANDIDATES = ("ours", "uvicorn-httptools", "uvicorn-h11", "hypercorn", "granian")
NEEDS = {"hypercorn": "hypercorn", "granian": "granian"}
INVALID = {"customer_id": 0, "items": [{"product_id": "P", "quantity": 1, "price": 1}]}
ORDER = b'{"customer_id":1234,"items":[{"product_id":"PROD-001","quantity":2,"price":49.99}]}'


def receiver_app() -> Any:
    """The receiver's ASGI app from the environment (granian's --factory target)."""
    from app import receiver, settings

    return receiver.build(settings.receiver())


def serve(candidate: str, port: int) -> None:
    """Run the receiver under `candidate` on 127.0.0.1:port until killed (the child process of `measure`)."""
    if candidate == "ours":
        from app.__main__ import main

        sys.exit(main(["receiver", "--host", "127.0.0.1", "--port", str(port)]))
    if candidate == "granian":
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--http",
                "1",
                "--no-ws",
                "--log-level",
                "warning",
                "--http1-header-read-timeout",
                str(TIMEOUT_SETTING * 1000),
                "bench.benchmarks.servers:receiver_app",
            ],
        )
    app = receiver_app()
    if candidate.startswith("uvicorn-"):
        import uvicorn

        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            http=candidate.removeprefix("uvicorn-"),
            log_level="warning",
            access_log=False,
            timeout_keep_alive=75,
        )
    elif candidate == "hypercorn":
        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind, config.keep_alive_timeout, config.loglevel = [f"127.0.0.1:{port}"], 75, "WARNING"
        asyncio.run(hypercorn_serve(app, config))


@dataclass(frozen=True)
class ServerFigures:
    candidate: str
    cpu_ms_per_request: float
    probes: dict[str, str]  # probe -> what the client saw


def _tree_cpu(process: psutil.Process) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


async def _hammer(url: str, requests: int) -> None:
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=8)) as client:
        gate = asyncio.Semaphore(8)

        async def one() -> None:
            async with gate:
                await client.post(contract.ASYNC_ORDERS_PATH, json=INVALID)

        await asyncio.gather(*(one() for _ in range(requests)))


def _seen(sock: socket.socket, wait: float) -> str:
    """The first status line the server sent (or '-') and whether it closed the connection within `wait`."""
    sock.settimeout(wait)
    data, started, state = b"", time.monotonic(), f"still open after {wait:g} s"
    try:
        while chunk := sock.recv(65536):
            data += chunk
        state = f"closed after {time.monotonic() - started:.1f} s"
    except TimeoutError:
        pass
    except ConnectionResetError:
        state = f"reset after {time.monotonic() - started:.1f} s"
    statuses = [part.split(b" ", 1)[0].decode() for part in data.split(b"HTTP/1.1 ")[1:]]
    return f"{' then '.join(statuses) or 'no answer'}, {state}"


def _probe(port: int, name: str) -> str:
    head = b"POST /orders/async HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    length = b"Content-Length: %d\r\n\r\n" % len(ORDER)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            if name == "stalled header line":
                sock.sendall(head[:40])
            elif name == "stalled body":
                sock.sendall(head + length + ORDER[:30])
            elif name == "idle keep-alive":
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            elif name == "1 MiB header":  # with a valid order: 202 means the headers were taken
                sock.sendall(head + b"X-Big: " + b"a" * (1 << 20) + b"\r\n" + length + ORDER)
            elif name == "10,000 headers":
                sock.sendall(head + b"".join(b"X-%d: v\r\n" % i for i in range(10_000)) + length + ORDER)
            elif name == "order + garbage":
                sock.sendall(head + length + ORDER + b"GARBAGE\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _seen(sock, PROBE_SECONDS)


PROBES = ("stalled header line", "stalled body", "idle keep-alive", "1 MiB header", "10,000 headers", "order + garbage")


def measure(candidate: str, env: dict[str, str], requests: int, logs: Path) -> ServerFigures:
    port = free_port()
    with open(logs / f"{candidate}.log", "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.benchmarks.servers", "--serve", candidate, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
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
                    raise stack.OpsError(f"{candidate} did not start; see {logs / (candidate + '.log')}") from None
                time.sleep(0.1)
        asyncio.run(_hammer(url, 200))  # warm-up
        process, rounds = psutil.Process(child.pid), []
        for _ in range(3):
            before = _tree_cpu(process)
            asyncio.run(_hammer(url, requests))
            rounds.append(1000 * (_tree_cpu(process) - before) / requests)
        probes = {name: _probe(port, name) for name in PROBES}
    finally:
        child.kill()
        child.wait()
    return ServerFigures(candidate, round(statistics.median(rounds), 3), probes)


def render(figures: list[ServerFigures], skipped: list[str]) -> str:
    lines = [f"{'server':<18} {'CPU ms/request':>14}"]
    for f in figures:
        lines.append(f"{f.candidate:<18} {f.cpu_ms_per_request:>14.3f}")
        lines += [f"    {name + ':':<21} {seen}" for name, seen in f.probes.items()]
    if skipped:
        lines.append(f"not installed, skipped: {', '.join(skipped)}")
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    if args.serve:
        serve(args.serve, args.port)
        return 0
    logs = Path(tempfile.mkdtemp(prefix="flashsale-servers-"))
    installed = [c for c in CANDIDATES if c not in NEEDS or importlib.util.find_spec(NEEDS[c]) is not None]
    with deployed_task_env("receiver", logs) as task_env:
        env = task_env | {
            contract.ENV_HEADER_TIMEOUT_SECONDS: str(TIMEOUT_SETTING),
            contract.ENV_BODY_TIMEOUT_SECONDS: str(TIMEOUT_SETTING),
        }
        figures = []
        for candidate in installed:
            stack.progress(f"{candidate}: {args.requests} requests x 3, then the probes")
            figures.append(measure(candidate, env, args.requests, logs))
    skipped = [c for c in CANDIDATES if c not in installed]
    result = {
        "servers": [asdict(f) for f in figures],
        "skipped": skipped,
        "requests": args.requests,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    stack.emit(args, result, render(figures, skipped) + f"\n1-minute load average {result['load_average_1m']:g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.servers", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per round (3 rounds; default 3000)")
    parser.add_argument("--serve", choices=CANDIDATES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    stack.add_json_argument(parser)
    return stack.run(parser, command, argv)


if __name__ == "__main__":
    sys.exit(main())
