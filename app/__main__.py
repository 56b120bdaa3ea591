"""`python -m app ROLE`: run one of the three services (ROLE: sync | receiver | worker, or the ROLE env var).

In the container the web roles listen on 0.0.0.0:$PORT; locally the local ECS passes --host 127.0.0.1 and a free port.
"""

from __future__ import annotations

import argparse
import os
import sys

from starlette.types import ASGIApp

from app import contract, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Run one flashsale order service.")
    parser.add_argument("role", nargs="?", default=os.environ.get(contract.ENV_ROLE), choices=contract.ROLES,
                        help=f"which service (default: ${contract.ENV_ROLE})")
    parser.add_argument("--host", default="0.0.0.0", help="address the web roles listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get(contract.ENV_PORT) or contract.CONTAINER_PORT),
                        help=f"port of the web roles (default ${contract.ENV_PORT} or {contract.CONTAINER_PORT})")
    args = parser.parse_args(argv)
    if args.role is None:
        parser.error(f"give a ROLE ({' | '.join(contract.ROLES)}) or set ${contract.ENV_ROLE}")
    app: ASGIApp
    limits: settings.HttpSettings
    try:
        if args.role == "worker":
            from app import worker

            worker.run(settings.worker())
            return 0
        if args.role == "sync":
            from app import sync_service

            sync_settings = settings.sync()
            app, limits = sync_service.build(sync_settings), sync_settings.http
        else:
            from app import receiver

            receiver_settings = settings.receiver()
            app, limits = receiver.build(receiver_settings), receiver_settings.http
    except settings.SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from app import http_server

    http_server.serve(app, host=args.host, port=args.port, limits=limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
