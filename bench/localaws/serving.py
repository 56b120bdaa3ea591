"""A Starlette app served by uvicorn in one daemon thread of the local runtime (the live view, the ECS API facade).

Everything the server would import lazily is imported by `start()` in the calling thread, before the server's thread
runs: an import in that thread would run beside whatever the rest of the process does (tests, the lab), and anyio
(whose names load on first use) parses source into an AST when some of its packages are imported, as pytest's
assertion rewriting does for anyio (a pytest plugin). CPython 3.11's AST objects are not thread-safe: two threads
parsing at once can fail with "SystemError: AST constructor recursion depth mismatch", seen as a 500 from the live
view's static files in tests/test_console.py.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time

import anyio
import anyio.abc
import uvicorn
from starlette.applications import Starlette

from bench.localaws.emulators import LOOPBACK

START_TIMEOUT_SECONDS = 10.0


class ServingError(RuntimeError):
    pass


def import_before_serving(config: uvicorn.Config) -> None:
    """Import now, in this thread, what uvicorn and Starlette would import on the server's start or first request."""
    config.load()  # the protocol, websocket and lifespan classes the config names
    config.get_loop_factory()  # the event loop (uvloop when installed)
    importlib.import_module("anyio._backends._asyncio")  # what anyio imports in the first event loop it serves
    for package in (anyio, anyio.abc):  # each name anyio loads on first use (Starlette's file, thread and task calls)
        for name in dir(package):
            getattr(package, name)


class ThreadedServer:
    """`start()` listens on 127.0.0.1:`port` (0: a free one) and returns once uvicorn serves; `stop()` ends it."""

    def __init__(self, app: Starlette, *, port: int = 0, name: str) -> None:
        self.app = app
        self.port = port
        self.name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ThreadedServer:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((LOOPBACK, self.port))
        except OSError as error:
            listener.close()
            raise ServingError(f"the {self.name} cannot listen on port {self.port}: {error.strerror}") from error
        self.port = int(listener.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        import_before_serving(config)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [listener]},
            name=f"local-{self.name.replace(' ', '-')}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServingError(f"the {self.name} did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def cpu_seconds(self) -> float:
        """CPU the server's thread has used so far."""
        if self._thread is None or self._thread.ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(self._thread.ident))

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
