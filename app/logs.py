"""One structured line per event: JSON that machines parse and whose `msg` reads like the report's logs."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def event(name: str, message: str, *, level: str = "info", **fields: Any) -> None:
    """Write one event line to stdout, e.g. msg="[WORKER-7] Processing order <id>" with event="processing"."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    record = {"ts": stamp, "level": level, "msg": message, "event": name, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
