"""The in-process servers (the live view, the ECS API facade, the task-protection agent) import nothing while they
serve: `bench.localaws.serving` imports what uvicorn, Starlette and anyio would load lazily before the server's thread
runs. An import in a server thread runs beside the test's own thread, and when both parse source into an AST (anyio's
lazy loader does, and pytest rewrites anyio as a plugin) CPython 3.11 can fail with "AST constructor recursion depth
mismatch": tests/test_console.py once saw the live view's static files answer 500 that way.

The servers run in a fresh interpreter (`probe()`), where nothing is imported yet, so the check does not depend on
what earlier tests of this worker happened to import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ECS_TARGET = "AmazonEC2ContainerServiceV20141113.DescribeServices"


def probe() -> None:
    """Start the servers, serve requests on each, and print (thread, module) for each import made in another
    thread than this one, from the moment the servers have started."""
    import http.server
    import importlib.abc
    import threading
    import types
    from typing import Any

    imported: list[tuple[str, str]] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
            if threading.current_thread() is not threading.main_thread():
                imported.append((threading.current_thread().name, fullname))

    import httpx

    from bench.localaws.agent import STATE_SUFFIX, Agent
    from bench.localaws.console import Console
    from bench.localaws.deployer import Endpoints
    from bench.localaws.ecs_api import EcsApi

    class Moto(http.server.BaseHTTPRequestHandler):  # what the facade forwards to: an empty DescribeServices answer
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"services": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    moto = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Moto)
    threading.Thread(target=moto.serve_forever, daemon=True).start()
    unused = "http://127.0.0.1:9"  # the live view's sampling is not asked for here: its static files are
    console = Console(types.SimpleNamespace(endpoints=Endpoints(unused, unused))).start()
    facade = EcsApi(f"http://127.0.0.1:{moto.server_address[1]}", lambda cluster, service: None).start()
    agent = Agent()
    sys.meta_path.insert(0, Recorder())
    answers = [httpx.post(facade.url + "/", headers={"x-amz-target": ECS_TARGET}, content=b"{}").status_code]
    answers += [httpx.get(console.url + path).status_code for path in ("", "console.css", "console.js")]
    state = agent.uri_for("t-1") + STATE_SUFFIX
    answers += [httpx.put(state, json={"ProtectionEnabled": True}).status_code, httpx.get(state).status_code]
    print(json.dumps({"answers": answers, "imported": imported}))
    console.stop()
    facade.stop()
    agent.close()
    moto.shutdown()


def test_the_servers_import_nothing_while_they_serve() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from tests.test_serving import probe; probe()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["answers"] == [200] * 6
    assert seen["imported"] == [], "imported while serving (thread, module): " + ", ".join(
        f"{thread} {module}" for thread, module in seen["imported"]
    )
