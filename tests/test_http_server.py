"""app.http_server.serve: what start-up built is out of the garbage collector's reach before the first request (a
full collection over botocore's ~800,000 start-up objects stalled every request for 0.2-0.6 s under load)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn

from app import http_server, settings


def test_serve_freezes_what_start_up_built_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    start_up = [{"model": n} for n in range(1000)]  # stands for the service models the app holds
    frozen_at_start: list[int] = []

    def run(app: Any, **options: Any) -> None:
        frozen_at_start.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", run)
    gc.unfreeze()
    try:
        http_server.serve(lambda *_: None, host="127.0.0.1", port=0, limits=settings.http())  # type: ignore[arg-type]
        assert frozen_at_start and frozen_at_start[0] >= len(start_up)
    finally:
        gc.unfreeze()
