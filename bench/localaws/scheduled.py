"""LOCAL ONLY: a Lambda function that an EventBridge schedule runs, run on one machine: call the function's handler
(`module.function`, from the deployed configuration) with a scheduled event, at once and then once per period.

moto stores the schedule and never fires it, so the local system runs this module as a process with the function's
environment as deployed (`python -m bench.localaws.scheduled --handler app.sweeper.handler --every 86400`); `--once`
runs it once and exits (tests, or an operator sweeping by hand). Each run is one log line starting with `SCHEDULED`,
with what the handler returned.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

SCHEDULED = "SCHEDULED "  # the log line of a run

Handler = Callable[[dict[str, Any], Any], Any]


def load(handler: str) -> Handler:
    """The function a Lambda handler setting names (`package.module.function`)."""
    module, _, name = handler.rpartition(".")
    found: Handler = getattr(importlib.import_module(module), name)
    return found


def run_once(handler: Handler, name: str) -> bool:
    """One scheduled invocation, as EventBridge hands it (a `Scheduled Event`); False when it failed."""
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    try:
        result = handler(event, None)
    except (BotoCoreError, ClientError) as error:  # Lambda would retry, then send the event to the function's DLQ
        print(f"{SCHEDULED}{name} failed: {error}", flush=True)
        return False
    print(f"{SCHEDULED}{name} {json.dumps(result, default=str)}", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.localaws.scheduled",
        description="Local system: run a scheduled Lambda's handler now and on its period.",
    )
    p.add_argument("--handler", required=True, help="the function's handler setting, e.g. app.sweeper.handler")
    p.add_argument("--every", type=float, default=0.0, help="seconds between runs (the rule's rate)")
    p.add_argument("--once", action="store_true", help="run once, then exit (status 1 if it failed)")
    args = p.parse_args(argv)
    handler = load(args.handler)
    if args.once:
        return 0 if run_once(handler, args.handler) else 1
    if args.every <= 0:
        p.error("--every must be positive (or use --once)")
    stop = threading.Event()
    try:
        while True:
            run_once(handler, args.handler)
            if stop.wait(args.every):
                return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
