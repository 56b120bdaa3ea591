"""What this process refused, by class, for /stats: every way a request is turned away before it is served.

The classes span the layers that refuse: the HTTP server (app.http_server: framing, header limits and deadline, the
connection cap), the body reader (app.web.BufferedBody: size and deadline) and the input rules (app.web
read_submission). One counter per process, shared by those layers, so /stats of either web service shows them all.
"""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from typing import Final


class Rejection(StrEnum):
    MALFORMED_HTTP = "malformed_http"  # 400: the request's framing (request line, headers, Content-Length, chunks)
    HEADERS_TOO_LARGE = "headers_too_large"  # 431
    HEADER_TIMEOUT = "header_timeout"  # 408: request line and headers not in within the header deadline
    BODY_TIMEOUT = "body_timeout"  # 408: the body not in within the body deadline
    BODY_TOO_LARGE = "body_too_large"  # 413: declared or sent
    CONNECTIONS_FULL = "connections_full"  # 503: the connection cap, none idle to close
    INVALID_INPUT = "invalid_input"  # 400 malformed JSON or Idempotency-Key, 415, 422 invalid fields


COUNTS: Final[Counter[Rejection]] = Counter()


def count(rejection: Rejection) -> None:
    COUNTS[rejection] += 1


def snapshot() -> dict[str, int]:
    """Every class, refused or not (a class missing from /stats would read as "never counted")."""
    return {rejection.value: COUNTS[rejection] for rejection in Rejection}
