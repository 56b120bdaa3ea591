"""`python -m app ROLE`: run one of the services (ROLE: a name in app.roles.ROLES, or the ROLE env var).

What a role runs comes from its entry in the registry: its settings loader, then its entry with those settings; a web
role's entry gives the ASGI app, served here. In the container the web roles listen on 0.0.0.0:$PORT; locally the
local ECS passes --host 127.0.0.1 and a free port.
"""

from __future__ import annotations

import argparse
import os
import pkgutil
import sys

from botocore.exceptions import CredentialRetrievalError

from app import contract, roles, settings
from app.aws_async import UnsupportedProxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="Run one flashsale order service.")
    parser.add_argument(
        "role",
        nargs="?",
        default=os.environ.get(contract.ENV_ROLE),
        choices=list(roles.ROLES),
        help=f"which service (default: ${contract.ENV_ROLE})",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address the web roles listen on (default 0.0.0.0)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get(contract.ENV_PORT) or contract.CONTAINER_PORT),
        help=f"port of the web roles (default ${contract.ENV_PORT} or {contract.CONTAINER_PORT})",
    )
    args = parser.parse_args(argv)
    if args.role is None:
        parser.error(f"give a ROLE ({' | '.join(roles.ROLES)}) or set ${contract.ENV_ROLE}")
    role = roles.role(args.role)
    entry = pkgutil.resolve_name(role.entry)
    try:
        role_settings = settings.load(role.name)
        if not role.web:
            entry(role_settings)
            return 0
        app = entry(role_settings)
    except settings.SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except CredentialRetrievalError as e:  # its clients are made at start: ECS replaces a task that exits
        print(f"error: no AWS credentials for the {role.name}: {e}", file=sys.stderr)
        return 1
    except UnsupportedProxy as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from app import http_server

    http_server.serve(app, host=args.host, port=args.port, limits=role_settings.http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
